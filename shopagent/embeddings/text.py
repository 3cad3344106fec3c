"""What gets embedded for a product, and the hash that decides whether it must be embedded again."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

# Bump when the text recipe or model loading changes in a way that changes vectors.
EMBEDDING_VERSION = "2"


def product_text(product: Mapping[str, Any]) -> str:
    """The text embedded for a product: name first (it matters most), then facets, then prose."""
    parts = [
        product.get("name") or "",
        product.get("brand") or "",
        product.get("color") or "",
        " > ".join(product.get("category") or []),
        " ".join(product.get("bullet_points") or []),
        product.get("description") or "",
    ]
    return ". ".join(p.strip() for p in parts if p and p.strip())


def content_hash(text: str, model: str) -> str:
    """Hash of what determines a product's vector: the text, the model and the recipe version."""
    return hashlib.sha256(f"{model}\x00{EMBEDDING_VERSION}\x00{text}".encode()).hexdigest()
