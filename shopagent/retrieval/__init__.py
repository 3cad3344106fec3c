"""Retrieval: backends behind one protocol (`backends`), the Chroma store (`chroma`), pure rank fusion
(`fusion`), the strategy switch (`strategies`, the only place that branches on a strategy name), the
LangChain retriever over all of it (`retriever`), and a langchain-postgres `PGVectorStore` view
(`vectorstore`)."""
