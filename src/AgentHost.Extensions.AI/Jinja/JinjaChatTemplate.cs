using System.Text.Json;
using System.Text.Json.Nodes;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama;
using Microsoft.Extensions.AI;

namespace AgentHost.Extensions.AI.Jinja;

/// <summary>
/// A GGUF's chat template (<c>tokenizer.chat_template</c>) rendered by the library's Jinja engine: MEAI messages and
/// tools are mapped to the shape transformers passes to templates, and every value from the conversation or the
/// tools stays content in the resulting <see cref="ChatPrompt"/>.
/// </summary>
public sealed class JinjaChatTemplate
{
    private readonly JinjaTemplate _template;

    private JinjaChatTemplate(JinjaTemplate template) => _template = template;

    /// <summary>The parsed template.</summary>
    public JinjaTemplate Template => _template;

    /// <summary>Parses a chat template.</summary>
    /// <exception cref="AgentHostException">A syntax error or a broken limit (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public static JinjaChatTemplate Parse(string source, JinjaLimits? limits = null, string name = "chat_template") =>
        new(JinjaTemplate.Parse(source, name, limits));

    /// <summary>Renders a conversation.</summary>
    /// <param name="messages">System, user, assistant and tool messages.</param>
    /// <param name="tools">Tools on offer, or null (then <c>tools</c> is undefined in the template).</param>
    /// <param name="addGenerationPrompt">Whether to end with the header of a new assistant turn.</param>
    /// <param name="bosToken">The model's BOS text (markup), or null.</param>
    /// <param name="eosToken">The model's EOS text (markup), or null.</param>
    /// <param name="now">What <c>strftime_now</c> reads.</param>
    /// <param name="toolsInSystemMessage">Pass the tools as the system message's <c>tools</c> field (a JSON string of the
    /// functions, as Phi-4-mini's template takes them; an empty system message is added when there is none) instead
    /// of the <c>tools</c> variable.</param>
    /// <exception cref="JinjaRaiseException">The template refused the conversation.</exception>
    /// <exception cref="AgentHostException">The template failed or broke a limit, or a message has content a template cannot take.</exception>
    public ChatPrompt Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration>? tools, bool addGenerationPrompt, string? bosToken, string? eosToken, DateTimeOffset now,
        bool toolsInSystemMessage = false)
    {
        var mapped = MapMessages(messages);
        var content = new Dictionary<string, object?> { ["messages"] = mapped };
        if (tools is { Count: > 0 } && toolsInSystemMessage)
            content["messages"] = WithSystemTools(mapped, tools);
        else if (tools is { Count: > 0 })
            content["tools"] = MapTools(tools);
        var markup = new Dictionary<string, object?> { ["add_generation_prompt"] = addGenerationPrompt };
        if (bosToken is not null)
            markup["bos_token"] = bosToken;
        if (eosToken is not null)
            markup["eos_token"] = eosToken;
        return new ChatPrompt(_template.Render(content, markup, now));
    }

    /// <summary>Maps MEAI messages to transformers' shape: role, content, tool_calls
    /// [{id, type: "function", function: {name, arguments (a dict)}}], and one <c>tool</c> message (tool_call_id,
    /// name, content) per function result. Reasoning and usage parts are dropped.</summary>
    public static JsonElement MapMessages(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = new JsonArray();
        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var message in messages)
        {
            var role = message.Role.Value;
            var text = new System.Text.StringBuilder();
            var calls = new JsonArray();
            var results = new List<JsonObject>();
            foreach (var part in message.Contents)
            {
                switch (part)
                {
                    case TextContent t:
                        text.Append(t.Text);
                        break;
                    case TextReasoningContent or UsageContent:
                        break;
                    case FunctionCallContent call:
                        callNames[call.CallId] = call.Name;
                        var arguments = new JsonObject();
                        if (call.Arguments is not null)
                        {
                            foreach (var (key, value) in call.Arguments)
                                arguments[key] = value is null ? null : JsonSerializer.SerializeToNode(value, AIJsonUtilities.DefaultOptions);
                        }
                        calls.Add(new JsonObject
                        {
                            ["id"] = call.CallId,
                            ["type"] = "function",
                            ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = arguments },
                        });
                        break;
                    case FunctionResultContent result:
                        results.Add(new JsonObject
                        {
                            ["role"] = "tool",
                            ["tool_call_id"] = result.CallId,
                            ["name"] = callNames.GetValueOrDefault(result.CallId, string.Empty),
                            ["content"] = ChatFormat.ResultText(result),
                        });
                        break;
                    default:
                        throw new AgentHostException(ErrorKind.InvalidArgument,
                            $"A chat template cannot render {part.GetType().Name} in a {role} message; it writes text, function calls and function results.");
                }
            }

            if (results.Count > 0)
            {
                // Each result is its own tool message, as transformers expects.
                foreach (var result in results)
                    list.Add(result);
                continue;
            }
            var item = new JsonObject { ["role"] = role, ["content"] = text.ToString() };
            if (calls.Count > 0)
                item["tool_calls"] = calls;
            list.Add(item);
        }
        return JsonSerializer.SerializeToElement(list);
    }

    // The messages with the functions, as Python's json.dumps writes them, in the (first, or a new) system message's `tools`.
    private static JsonElement WithSystemTools(JsonElement messages, IReadOnlyList<AIFunctionDeclaration> tools)
    {
        var list = JsonNode.Parse(messages.GetRawText())!.AsArray();
        var system = list.FirstOrDefault(m => m!["role"]?.GetValue<string>() == "system")?.AsObject();
        if (system is null)
            list.Insert(0, system = new JsonObject { ["role"] = "system", ["content"] = string.Empty });
        var functions = MapTools(tools).EnumerateArray().Select(t => t.GetProperty("function")).ToList();
        system["tools"] = JsonText.Write(JsonSerializer.SerializeToElement(functions));
        return JsonSerializer.SerializeToElement(list);
    }

    /// <summary>Maps tools to <c>{"type": "function", "function": {"name", "description", "parameters"}}</c>.</summary>
    public static JsonElement MapTools(IReadOnlyList<AIFunctionDeclaration> tools)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var list = new JsonArray();
        foreach (var tool in tools)
        {
            list.Add(new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject
                {
                    ["name"] = tool.Name,
                    ["description"] = tool.Description ?? string.Empty,
                    ["parameters"] = JsonNode.Parse(tool.JsonSchema.GetRawText()),
                },
            });
        }
        return JsonSerializer.SerializeToElement(list);
    }
}
