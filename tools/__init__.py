"""Typed tools over the CRM services; one registry feeds the agent, the API and MCP."""

from tools import charts, history, leads, outreach, read, recall, scores, write  # noqa: F401  (each module registers its tools)
from tools.base import TOOLS, Preview, Tool, ToolContext, ToolOutput, error_sentence

__all__ = ["TOOLS", "Preview", "Tool", "ToolContext", "ToolOutput", "error_sentence"]
