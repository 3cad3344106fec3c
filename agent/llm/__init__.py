"""The LLM brain: `providers` (the chat model from the settings, its health), `toolcalls` (native and
JSON-in-content tool calls, validated), `turn` (one turn: tool rounds, the answer step without tools, the turn
budget, grounding, and the visible fallback to the offline brain)."""
