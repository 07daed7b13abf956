"""Which model answers: an OpenAI-compatible endpoint from settings, or the offline model."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from agents.prompts import SYSTEM, fence
from store.services import org
from store.settings import Settings, get_settings
from tools import TOOLS, ToolContext


class Brain(Protocol):
    name: str

    def respond(self, messages: list[BaseMessage], ctx: ToolContext) -> AIMessage: ...


@runtime_checkable
class RemoteBrain(Brain, Protocol):
    """A brain that thinks elsewhere: it reads what it needs first, then calls out with no
    database transaction open (an LLM call can take seconds; SQLite has one write lock)."""

    def prepare(self, ctx: ToolContext) -> str: ...

    def complete(self, system: str, messages: list[BaseMessage]) -> AIMessage: ...


class LLMBrain:
    """`ChatOpenAI` against any OpenAI-compatible endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp)."""

    def __init__(self, settings: Settings, *, headers: dict[str, str] | None = None) -> None:
        """`headers` go with every request (a gateway's own headers; the evals name the scenario)."""
        from langchain_openai import ChatOpenAI

        self.name = settings.llm_model or "default"
        self.base_url = settings.llm_base_url
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        self.chat = ChatOpenAI(model=self.name, base_url=self.base_url, api_key=key,  # type: ignore[arg-type]
                               max_retries=settings.llm_max_retries, timeout=settings.llm_timeout_seconds,
                               temperature=0, default_headers=headers,
                               stream_usage=True)  # token counts also when the graph streams
        self.bound = self.chat.bind_tools([_with_evidence(t.schema()) if t.kind == "write" else t.schema()
                                           for t in TOOLS.values()])

    def system_prompt(self, ctx: ToolContext) -> str:
        user = org.user_by_id(ctx.session, ctx.actor.user_id)
        ws = org.workspace_by_id(ctx.session, ctx.actor.workspace_id)
        return SYSTEM.format(user=user.name if user else "an admin", role=ctx.actor.role.value,
                             workspace=ws.name if ws else "the workspace", today=ctx.today,
                             weekday=ctx.today.strftime("%A"), tz=ctx.tz.key)

    def prepare(self, ctx: ToolContext) -> str:
        return self.system_prompt(ctx)

    def respond(self, messages: list[BaseMessage], ctx: ToolContext) -> AIMessage:
        return self.complete(self.prepare(ctx), messages)

    def complete(self, system: str, messages: list[BaseMessage]) -> AIMessage:
        import openai

        prepared: list[Any] = [SystemMessage(system)]
        for message in messages:
            if isinstance(message, ToolMessage):
                # Tool results carry record text (notes, emails): data, never instructions.
                fenced = fence(str(message.content), source=message.name or "tool")
                message = message.model_copy(update={"content": fenced})
            prepared.append(message)
        try:
            reply = self.bound.invoke(prepared)
        except openai.APIConnectionError:
            where = self.base_url or "the default OpenAI endpoint"
            return AIMessage(content=f"I could not reach the language model at {where} (CRM_LLM_BASE_URL). "
                             "Check that it is running, or unset CRM_LLM_MODEL to use the offline model.")
        except openai.APIStatusError as exc:
            return AIMessage(content=f"The language model at {self.base_url} answered with an error "
                             f"({exc.status_code}): {str(exc)[:300]}")
        assert isinstance(reply, AIMessage)
        return reply


def _with_evidence(schema: dict[str, Any]) -> dict[str, Any]:
    """A write tool's schema plus `evidence_quote` (the graph takes it off before the tool sees it)."""
    params = schema["function"]["parameters"]
    params.setdefault("properties", {})["evidence_quote"] = {
        "type": "string",
        "description": "The exact sentence from the user's message, the email or the transcript that justifies "
                       "this change, copied verbatim.",
    }
    return schema


def llm_configured(settings: Settings) -> bool:
    return bool(settings.llm_model or settings.llm_base_url)


def load_brain(settings: Settings | None = None) -> Brain:
    settings = settings or get_settings()
    if llm_configured(settings):
        return LLMBrain(settings)
    from agents.offline.chat import OfflineModel

    return OfflineModel()


def describe_model(settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    if llm_configured(settings):
        return f"LLM '{settings.llm_model or 'default'}' at {settings.llm_base_url or 'api.openai.com'}"
    return ("offline model (deterministic, no network; set CRM_LLM_MODEL and CRM_LLM_BASE_URL "
            "to use an OpenAI-compatible LLM)")
