"""The product agent graph: understand -> (LLM brain | action) -> respond. Wiring only.

`graph` (for Studio / `langgraph dev`, which supplies its own checkpointer) builds its services
lazily on the first run; the API calls `build_graph` with the Postgres checkpointer and its services.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.context import Context
from agent.deps import AgentDeps, default_deps
from agent.nodes import AgentNodes
from agent.state import InputState, State

ACTIONS = ("search", "details", "compare", "similar", "chat")


def build_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None, deps: AgentDeps | Callable[[], AgentDeps] | None = None
) -> CompiledStateGraph[State, Context, InputState, State]:
    """Compile the agent; `deps` defaults to the lazily built process-wide dependencies."""
    getter: Callable[[], AgentDeps]
    if isinstance(deps, AgentDeps):
        getter = lambda: deps  # noqa: E731 - bind the given instance
    else:
        getter = deps or default_deps
    nodes = AgentNodes(getter)
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node("understand", nodes.understand)
    builder.add_node("llm_agent", nodes.llm_agent)
    for name in ACTIONS:
        builder.add_node(name, getattr(nodes, name))
    builder.add_node("respond", nodes.respond)
    builder.add_edge(START, "understand")
    builder.add_conditional_edges("understand", nodes.route_brain, ["llm_agent", *ACTIONS])
    builder.add_conditional_edges("llm_agent", nodes.route_after_llm, [*ACTIONS, "respond", END])
    for name in ACTIONS:
        builder.add_edge(name, "respond")
    builder.add_edge("respond", END)
    return builder.compile(checkpointer=checkpointer, name="product_agent")


graph = build_graph()
