"""Product tools for the agent (plain functions over Services, and LangChain tool wrappers)."""

from tools.products import compare_products, make_tools, product_details, search_products, similar_products

__all__ = ["compare_products", "make_tools", "product_details", "search_products", "similar_products"]
