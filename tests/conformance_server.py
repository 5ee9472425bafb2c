"""A server with the tools, resources, prompts and completions the MCP conformance suite's server
scenarios ask for (names, URIs and contents as the scenarios expect), for running that suite
against our transport."""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Annotated, Any, Literal

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, Field

# A 1x1 red pixel.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
RED_PIXEL = types.ImageContent(data=base64.b64encode(PNG).decode(), mime_type="image/png")

# SEP-1613: listed as is, so the 2020-12 keywords must survive to tools/list.
JSON_SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
    "additionalProperties": False,
}

# SEP-1330: the five enum shapes an elicitation form may hold.
ENUM_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
        "titledSingle": {
            "type": "string",
            "oneOf": [
                {"const": "value1", "title": "First Option"},
                {"const": "value2", "title": "Second Option"},
                {"const": "value3", "title": "Third Option"},
            ],
        },
        "legacyEnum": {
            "type": "string",
            "enum": ["opt1", "opt2", "opt3"],
            "enumNames": ["Option One", "Option Two", "Option Three"],
        },
        "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
        "titledMulti": {
            "type": "array",
            "items": {
                "anyOf": [
                    {"const": "value1", "title": "First Choice"},
                    {"const": "value2", "title": "Second Choice"},
                    {"const": "value3", "title": "Third Choice"},
                ]
            },
        },
    },
}


class Reply(BaseModel):
    response: str


class Defaults(BaseModel):
    """SEP-1034: a default for every primitive type."""

    name: str = "John Doe"
    age: int = 30
    score: float = 95.5
    status: Literal["active", "inactive", "pending"] = "active"
    verified: bool = True


def silent_wav() -> bytes:
    """A tenth of a second of 8 kHz mono silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    return buffer.getvalue()


def json_schema_2020_12_tool(name: str | None = None, address: dict[str, str] | None = None) -> str:
    """Tool with JSON Schema 2020-12 features"""
    return f"name={name}, address={address}"


def build() -> MCPServer:
    schema_tool = Tool.from_function(json_schema_2020_12_tool)
    server = MCPServer(
        "mcp-sse-conformance", tools=[schema_tool.model_copy(update={"parameters": JSON_SCHEMA_2020_12})]
    )

    @server.tool()
    async def test_simple_text() -> str:
        """Plain text."""
        return "This is a simple text response for testing."

    @server.tool()
    async def test_image_content() -> types.ImageContent:
        """A PNG image."""
        return RED_PIXEL

    @server.tool()
    async def test_audio_content() -> types.AudioContent:
        """A WAV clip."""
        return types.AudioContent(data=base64.b64encode(silent_wav()).decode(), mime_type="audio/wav")

    @server.tool()
    async def test_embedded_resource() -> types.EmbeddedResource:
        """An embedded text resource."""
        text = "This is an embedded resource content."
        return types.EmbeddedResource(
            resource=types.TextResourceContents(uri="test://embedded-resource", mime_type="text/plain", text=text)
        )

    @server.tool()
    async def test_multiple_content_types() -> list[types.ContentBlock]:
        """Text, an image and an embedded resource."""
        data = json.dumps({"test": "data", "value": 123})
        resource = types.TextResourceContents(
            uri="test://mixed-content-resource", mime_type="application/json", text=data
        )
        return [
            types.TextContent(text="Multiple content types test:"),
            RED_PIXEL,
            types.EmbeddedResource(resource=resource),
        ]

    @server.tool()
    async def test_header_param(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})] = "",
    ) -> str:
        """An argument the client mirrors into ``Mcp-Param-Region`` (SEP-2243)."""
        return f"region {region!r}"

    @server.tool()
    async def test_missing_capability(ctx: Context) -> str:
        """Needs the client's sampling: refused with -32021 when the request did not declare it."""
        capabilities = ctx.request_context.session.client_capabilities
        if capabilities is None or capabilities.sampling is None:
            raise MCPError(
                code=types.MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="this tool needs the client's sampling capability",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return "sampling declared"

    @server.tool()
    async def test_tool_with_logging(ctx: Context | None = None) -> str:
        """Three log messages while running."""
        assert ctx is not None
        for text in ("Tool execution started", "Tool processing data", "Tool execution completed"):
            await ctx.info(text)
            await anyio.sleep(0.05)
        return "Tool with logging executed successfully"

    @server.tool()
    async def test_tool_with_progress(ctx: Context | None = None) -> str:
        """Progress 0, 50, 100 of 100."""
        assert ctx is not None
        for step in (0, 50, 100):
            await ctx.report_progress(step, 100, f"Completed step {step} of 100")
            await anyio.sleep(0.05)
        return "done"

    @server.tool()
    async def test_sampling(prompt: str, ctx: Context | None = None) -> str:
        """Ask the client's model."""
        assert ctx is not None
        result = await ctx.session.create_message(
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        text = result.content.text if isinstance(result.content, types.TextContent) else "No response"
        return f"LLM response: {text}"

    @server.tool()
    async def test_elicitation(message: str, ctx: Context | None = None) -> str:
        """Ask the user."""
        assert ctx is not None
        result = await ctx.elicit(message, Reply)
        content = result.data.model_dump_json() if result.action == "accept" and result.data else "{}"
        return f"User response: action={result.action}, content={content}"

    @server.tool()
    async def test_elicitation_sep1034_defaults(ctx: Context | None = None) -> str:
        """Ask the user with a default for every field."""
        assert ctx is not None
        result = await ctx.elicit("Please review and update the form fields with defaults", Defaults)
        content = result.data.model_dump_json() if result.action == "accept" else "{}"
        return f"Elicitation completed: action={result.action}, content={content}"

    @server.tool()
    async def test_elicitation_sep1330_enums(ctx: Context | None = None) -> str:
        """Ask the user to pick from each kind of enum."""
        assert ctx is not None
        result = await ctx.session.elicit_form(
            "Please select options from the enum fields", ENUM_FORM, related_request_id=ctx.request_id
        )
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content or {})}"

    @server.tool()
    async def test_error_handling() -> str:
        """Always fails."""
        raise RuntimeError("This tool intentionally returns an error for testing")

    @server.tool()
    async def test_reconnection(ctx: Context | None = None) -> str:
        """Close our own SSE connection mid-call (SEP-1699), then finish."""
        assert ctx is not None
        await ctx.info("Before disconnect")
        await ctx.close_sse_stream()
        await anyio.sleep(0.2)
        await ctx.info("After reconnect")
        return "Reconnection test completed"

    @server.resource("test://static-text", description="A static text resource.", mime_type="text/plain")
    def static_text() -> str:
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", description="A static PNG image.", mime_type="image/png")
    def static_binary() -> bytes:
        return PNG

    @server.resource("test://watched-resource", description="A resource to subscribe to.", mime_type="text/plain")
    def watched_resource() -> str:
        return "Watched resource content."

    @server.resource("test://template/{id}/data", description="Data for an id.", mime_type="application/json")
    def template_data(id: str) -> str:
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.prompt()
    def test_simple_prompt() -> str:
        """A prompt without arguments."""
        return "This is a simple prompt for testing."

    @server.prompt()
    def test_prompt_with_arguments(arg1: str, arg2: str) -> str:
        """A prompt with two required arguments."""
        return f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"

    @server.prompt()
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[types.ContentBlock]:
        """A prompt embedding the resource at `resourceUri`."""
        text = "Embedded resource content for testing."
        resource = types.TextResourceContents(uri=resourceUri, mime_type="text/plain", text=text)
        return [
            types.EmbeddedResource(resource=resource),
            types.TextContent(text="Please process the embedded resource above."),
        ]

    @server.prompt()
    def test_prompt_with_image() -> list[types.ContentBlock]:
        """A prompt with an image."""
        return [RED_PIXEL, types.TextContent(text="Please analyze the image above.")]

    @server.completion()
    async def complete(
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.Completion:
        values = [value for value in ("testValue1", "testValue2") if value.startswith(argument.value)]
        return types.Completion(values=values, total=len(values), has_more=False)

    subscribed: set[str] = set()  # watched URIs; no resource here changes, so no update is ever sent

    async def subscribe(ctx: object, params: types.SubscribeRequestParams) -> types.EmptyResult:
        subscribed.add(params.uri)
        return types.EmptyResult()

    async def unsubscribe(ctx: object, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        subscribed.discard(params.uri)
        return types.EmptyResult()

    async def set_level(ctx: object, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe)
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    return server
