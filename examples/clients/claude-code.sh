#!/bin/sh
# Register logai with Claude Code (runs it over SSH for each session).
claude mcp add logai -- ssh -T -o BatchMode=yes logs.example.com logai serve
