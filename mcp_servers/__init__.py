"""Read-only MCP servers, one package per backend: a typed HTTP client of its real API and the server over it."""
