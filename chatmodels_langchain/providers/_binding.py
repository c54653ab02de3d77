"""`bind_tools` and `with_structured_output` shared by the built-in models.

Tools are bound in OpenAI function format (each wire format converts them when it builds a
request). For structured output, `function_calling` forces a tool named after the schema;
`json_schema` and `json_mode` bind a `response_format` kwarg ({"type": "json_schema", ...}
or {"type": "json_object"}) that each wire format translates. `include_raw=True` returns
{"raw", "parsed", "parsing_error"}.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal, Protocol

from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass

__all__ = ["StructuredMethod", "bind_openai_tools", "structured_output"]

StructuredMethod = Literal["function_calling", "json_schema", "json_mode"]
_CHOICE_KEYWORDS = frozenset({"auto", "any", "required", "none"})


class _Bindable(Protocol):
    def bind(self, **kwargs: Any) -> Runnable[LanguageModelInput, Any]: ...

    def bind_tools(self, tools: Any, **kwargs: Any) -> Runnable[LanguageModelInput, Any]: ...


def bind_openai_tools(
    model: _Bindable,
    tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
    *,
    tool_choice: str | dict[str, Any] | bool | None = None,
    parallel_tool_calls: bool | None = None,
    strict: bool | None = None,
    **kwargs: Any,
) -> Runnable[LanguageModelInput, Any]:
    """Bind tools given as pydantic models, functions, LangChain tools or provider dicts.

    `tool_choice`: "auto", "any"/"required", "none", a tool name, or True (the only tool).
    """
    formatted = [convert_to_openai_tool(t, strict=strict) for t in tools]
    names = [tool["function"]["name"] for tool in formatted]
    if tool_choice is True:
        if len(formatted) != 1:
            raise ValueError("tool_choice=True needs exactly one tool")
        tool_choice = names[0]
    if (
        isinstance(tool_choice, str)
        and tool_choice not in _CHOICE_KEYWORDS
        and tool_choice not in names
    ):
        # Caught here rather than as the provider's HTTP 400 after a round trip.
        raise ValueError(f"tool_choice {tool_choice!r} names no bound tool (tools: {names})")
    if tool_choice is not None and tool_choice is not False:
        kwargs["tool_choice"] = tool_choice
    if parallel_tool_calls is not None:
        kwargs["parallel_tool_calls"] = parallel_tool_calls
    return model.bind(tools=formatted, **kwargs)


def structured_output(
    model: _Bindable,
    schema: dict[str, Any] | type,
    *,
    include_raw: bool = False,
    method: StructuredMethod = "function_calling",
    strict: bool | None = None,
) -> Runnable[LanguageModelInput, Any]:
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    parser: Runnable[Any, Any]
    if method == "function_calling":
        tool = convert_to_openai_tool(schema, strict=strict)
        name = tool["function"]["name"]
        llm = model.bind_tools(
            [schema], tool_choice=name, strict=strict,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": tool},
        )
        parser = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)  # type: ignore[list-item]
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=name, first_tool_only=True)
        )
    elif method in ("json_schema", "json_mode"):
        if method == "json_schema":
            json_schema = convert_to_json_schema(schema)
            response_format: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": str(json_schema.get("title") or "response"),
                                "schema": json_schema,
                                "strict": True if strict is None else strict},
            }
        else:
            response_format = {"type": "json_object"}
        llm = model.bind(
            response_format=response_format,
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        parser = (
            PydanticOutputParser(pydantic_object=schema)  # type: ignore[arg-type]
            if is_pydantic
            else JsonOutputParser()
        )
    else:
        raise ValueError(f"unknown structured-output method {method!r}")
    if not include_raw:
        return llm | parser
    parse = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    ).with_fallbacks(
        [RunnablePassthrough.assign(parsed=lambda _: None)], exception_key="parsing_error"
    )
    return RunnableMap(raw=llm) | parse
