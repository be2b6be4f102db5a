using AgentHost.Llama.Tests.Support;
using AgentHost.SemanticKernel.Mcp;

namespace AgentHost.SemanticKernel.Tests.Support;

/// <summary>
/// An MCP server as a real process: a shell script that speaks just enough of the protocol (the handshake and a tool
/// list: one tool, <c>echo-text</c>) and answers tool calls the way asked. The SK tests and the CLI tests share it.
/// </summary>
internal static class ScriptedMcpServer
{
    // Answers initialize and tools/list, "method not found" to other requests, and on tools/call does what $1 says:
    // answer, answer with isError, exit, write garbage or stay silent.
    private const string Script = """
        mode="$1"
        while IFS= read -r line; do
          id=$(printf '%s' "$line" | grep -o '"id":[^,}]*' | head -n 1 | cut -d: -f2)
          case "$line" in
            *'"method":"initialize"'*)
              printf '{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"scripted","version":"1"}}}\n' "$id" ;;
            *'"method":"tools/list"'*)
              printf '{"jsonrpc":"2.0","id":%s,"result":{"tools":[{"name":"echo-text","description":"Echoes a text.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}]}}\n' "$id" ;;
            *'"method":"tools/call"'*)
              case "$mode" in
                ok) printf '{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"echo"}]}}\n' "$id" ;;
                error) printf '{"jsonrpc":"2.0","id":%s,"result":{"isError":true,"content":[{"type":"text","text":"the text is too long"}]}}\n' "$id" ;;
                exit) echo "scripted server: exiting mid-call" >&2; exit 3 ;;
                garbage) echo 'this is not JSON' ;;
                silent) ;;
              esac ;;
            *) [ -n "$id" ] && printf '{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"Method not found"}}\n' "$id" ;;
          esac
        done
        """;

    /// <summary>The server (<c>sh server.sh MODE</c>, the script written into <paramref name="folder"/>) whose tool calls do what <paramref name="mode"/> says.</summary>
    public static McpServerEntry Entry(TempFolder folder, string mode)
    {
        var script = folder.Combine("server.sh");
        File.WriteAllText(script, Script.ReplaceLineEndings("\n"));
        return new McpServerEntry { Command = "sh", Args = [script, mode] };
    }
}
