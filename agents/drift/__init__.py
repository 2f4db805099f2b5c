"""The drift agent: a LangGraph graph from Argo CD webhook to signed, guarded verdict."""
