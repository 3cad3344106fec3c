"""The product tools both brains use (see `tools.products`)."""

from tools.products import ProductTools, ToolResult, make_tools

__all__ = ["ProductTools", "ToolResult", "make_tools"]
