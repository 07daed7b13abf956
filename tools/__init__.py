"""Typed tools over the CRM services, in one registry (`TOOLS`).

The agent reads it (each tool's schema for the model, the approval gate's previews and
commits), and so do the Slack approval cards. There is no MCP server: none is built yet.
"""

from tools import charts, history, leads, outreach, read, recall, scores, write  # noqa: F401  (each module registers its tools)
from tools.base import TOOLS, Preview, Tool, ToolContext, ToolOutput, error_sentence

__all__ = ["TOOLS", "Preview", "Tool", "ToolContext", "ToolOutput", "error_sentence"]
