using System.Text;
using System.Text.Json;
using AgentHost.Llama;
using AgentHost.Llama.Models;
using AgentHost.Extensions.AI.Jinja;
using AgentHost.Extensions.AI.Templates;
using Microsoft.Extensions.AI;
using Scriban;
using Scriban.Runtime;
using Scriban.Syntax;

namespace AgentHost.Extensions.AI.Chat;

/// <summary>
/// How one model family wants a conversation written: a Scriban template (from <c>prompts/formats/</c>), the
/// stop strings that end an assistant turn, and the family's tool-call format. Get one from a
/// <see cref="ChatFormatCatalog"/>.
/// </summary>
/// <remarks>
/// Templates receive <c>system</c> (the leading system message or null), <c>messages</c> (the rest, consecutive
/// tool messages merged; each with <c>role</c>, <c>content</c>, <c>has_content</c>, <c>is_last_user</c>,
/// <c>tool_calls</c> [<c>id</c>, <c>id_json</c>, <c>name</c>, <c>name_json</c>, <c>arguments</c>] and
/// <c>tool_results</c> [<c>id</c>, <c>id_json</c>, <c>name</c>, <c>content</c>, <c>content_json</c>]),
/// <c>tools</c> (<c>name</c>, <c>description</c>, <c>parameters</c>, <c>json</c>), <c>add_generation_prompt</c>
/// and the function <c>text_strip</c>. Every value that comes from the conversation or the tools arrives marked
/// as content, so what the template writes itself is the only markup.
/// </remarks>
public sealed class ChatFormat
{
    // Private-use characters that bracket content inside the rendered text; stripped from all inputs.
    private const char ContentStart = '\uE000';
    private const char ContentEnd = '\uE001';

    /// <summary>The name of the format that renders a model's own GGUF chat template.</summary>
    public const string ModelTemplate = "gguf";

    // A built-in (Scriban) format has these three ...
    private readonly Template? _template;
    private readonly ITemplateLoader? _loader;
    private readonly ScribanLimits _limits = ScribanLimits.Default;

    // ... a model's own template these: its BOS/EOS texts, the clock of strftime_now, and the family's built-in format
    // for what the template cannot write (tools, calls or results a template without tool support would drop).
    private readonly JinjaChatTemplate? _jinja;
    private readonly string? _bos;
    private readonly string? _eos;
    private readonly TimeProvider _clock = TimeProvider.System;
    private readonly ChatFormat? _builtIn;
    private readonly Lazy<TemplateCapabilities>? _capabilities;
    private readonly ToolCallFormat _toolCalls;

    internal ChatFormat(string name, IReadOnlyList<string> stopSequences, ToolCallFormat toolCalls, Template template, ITemplateLoader loader, ScribanLimits limits)
    {
        _limits = limits;
        Name = name;
        Family = name;
        StopSequences = stopSequences;
        _toolCalls = toolCalls;
        _template = template;
        _loader = loader;
    }

    internal ChatFormat(JinjaChatTemplate template, ChatFormat builtIn, ToolCallFormat templateToolCalls, string? bos, string? eos, TimeProvider? clock)
    {
        Name = ModelTemplate;
        Family = builtIn.Family;
        StopSequences = builtIn.StopSequences;
        _toolCalls = templateToolCalls;
        _jinja = template;
        _builtIn = builtIn;
        _bos = bos;
        _eos = eos;
        _clock = clock ?? TimeProvider.System;
        _capabilities = new(() => TemplateCapabilities.Probe(this));
    }

    /// <summary>
    /// The format's name: a built-in format's (e.g. <c>chatml</c>), or <see cref="ModelTemplate"/> (<c>gguf</c>) for a
    /// model's own chat template.
    /// </summary>
    public string Name { get; }

    /// <summary>
    /// The model family the format belongs to (a built-in format's name): its stop strings and tool-call syntax. For a
    /// model's own template, the family detected from the template.
    /// </summary>
    public string Family { get; }

    /// <summary>Whether this is the model's own GGUF chat template (Jinja), rather than a built-in Scriban format.</summary>
    public bool IsModelTemplate => _jinja is not null;

    /// <summary>
    /// Whether the model's own template writes tools and tool results (past calls it does not write are written as text
    /// in its syntax); where it does not, such conversations are rendered with the family's built-in format instead.
    /// Always true for built-in formats.
    /// </summary>
    public bool WritesTools => _capabilities?.Value.All ?? true;

    /// <summary>
    /// Texts that end an assistant turn (e.g. <c>&lt;|im_end|&gt;</c>). Most are control tokens, which a
    /// detokenizer hides: match them as tokens with <see cref="GetStopTokens"/>. Empty for <c>plain</c>
    /// (the model's end-of-generation token ends the reply).
    /// </summary>
    public IReadOnlyList<string> StopSequences { get; }

    /// <summary>How this family writes tool calls, and the parser that reads them back.</summary>
    /// <remarks>For a model's own template, the syntax its template teaches (<see cref="ToolCallFormat.FromChatTemplate"/>)
    /// where it writes tools, else the family's built-in format's, which then writes the tools.</remarks>
    public ToolCallFormat ToolCalls => _builtIn is null || WritesTools ? _toolCalls : _builtIn.ToolCalls;

    /// <inheritdoc />
    public override string ToString() => IsModelTemplate ? $"{Name} ({Family} family)" : Name;

    /// <summary>The tokens of <paramref name="model"/> whose text is one of <see cref="StopSequences"/>.</summary>
    public IReadOnlyList<int> GetStopTokens(LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var specials = model.GetState(SpecialTokens.ForModel);
        var tokens = new List<int>();
        foreach (var stop in StopSequences)
        {
            if (specials.Find(stop) is { } token)
                tokens.Add(token);
        }
        return tokens;
    }

    /// <summary>Renders a conversation (and the tools on offer) into a prompt.</summary>
    /// <param name="messages">System, user, assistant and tool messages. Text parts of a message are concatenated;
    /// assistant messages may carry <see cref="FunctionCallContent"/>, tool messages <see cref="FunctionResultContent"/>.</param>
    /// <param name="tools">Tools the model may call, or null.</param>
    /// <param name="addGenerationPrompt">Whether to end with the header of a new assistant turn.</param>
    /// <exception cref="AgentHostException">A message has an unknown role or content this format cannot write
    /// (images, audio ...), or an overriding template fails or breaks a <see cref="ScribanLimits"/> limit
    /// (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    public ChatPrompt Render(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration>? tools = null, bool addGenerationPrompt = true)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (_jinja is not null)
        {
            var capabilities = _capabilities!.Value;
            if (!capabilities.CanWrite(messages, tools))
                return _builtIn!.Render(messages, tools, addGenerationPrompt);
            if (!capabilities.ToolCalls)
                messages = CallsAsText(messages);
            return RenderModelTemplate(messages, tools, addGenerationPrompt, capabilities.SystemTools);
        }

        var globals = new ScriptObject();
        BuildModel(messages, tools, globals);
        globals["add_generation_prompt"] = addGenerationPrompt;
        globals.Import("text_strip", new Func<string?, string>(TextStrip));

        // A template loops over the conversation, so its length earns iterations on top of the loop limit, and its text
        // (written once, escaped at most to twice its length) earns output on top of the output limit: the limits scale
        // with the conversation, which the context bounds, not with a fixed count.
        var items = tools?.Count ?? 0;
        long length = 0;
        if (tools is not null)
        {
            foreach (var tool in tools)
                length += tool.Name.Length + (tool.Description?.Length ?? 0) + tool.JsonSchema.GetRawText().Length;
        }
        foreach (var message in messages)
        {
            items += 1 + message.Contents.Count;
            foreach (var content in message.Contents)
                length += ContentLength(content);
        }
        var text = BoundedScriban.Render(_template!, $"Chat format '{Name}'", globals, _limits, _loader!, inputIterations: items, inputLength: 2 * length);
        return new ChatPrompt(Split(text));
    }

    private static long ContentLength(AIContent content)
    {
        switch (content)
        {
            case TextContent text:
                return text.Text?.Length ?? 0;
            case TextReasoningContent reasoning:
                return reasoning.Text?.Length ?? 0;
            case FunctionResultContent result:
                return result.Result?.ToString()?.Length ?? 0;
            case FunctionCallContent call:
                long length = call.Name.Length;
                if (call.Arguments is not null)
                {
                    foreach (var (key, value) in call.Arguments)
                        length += key.Length + (value?.ToString()?.Length ?? 4) + 8;
                }
                return length;
            default:
                return 0;
        }
    }

    private ChatPrompt RenderModelTemplate(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration>? tools, bool addGenerationPrompt, bool toolsInSystemMessage)
    {
        try
        {
            return _jinja!.Render(messages, tools, addGenerationPrompt, _bos, _eos, _clock.GetLocalNow(), toolsInSystemMessage);
        }
        catch (JinjaRaiseException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The model's chat template refused the conversation: {e.TemplateMessage}");
        }
    }

    // For a template that teaches tools but does not write past calls (Phi-4-mini's): each call as its syntax's text.
    private List<ChatMessage> CallsAsText(IReadOnlyList<ChatMessage> messages)
    {
        var result = new List<ChatMessage>(messages.Count);
        foreach (var message in messages)
        {
            if (!message.Contents.Any(c => c is FunctionCallContent))
            {
                result.Add(message);
                continue;
            }
            var contents = message.Contents.Select(c => c is FunctionCallContent call ? new TextContent(_toolCalls.FormatCall(call.Name, ArgumentsJson(call.Arguments))) : c);
            result.Add(new ChatMessage(message.Role, [.. contents]));
        }
        return result;
    }

    /// <summary>
    /// What a model's own template writes, found once by rendering probes (as llama.cpp's template engine does): a
    /// template that drops tools, calls or results would make the model blind to them, so those conversations go to
    /// the family's built-in format.
    /// </summary>
    private sealed record TemplateCapabilities(bool Tools, bool ToolCalls, bool ToolResults, bool SystemTools)
    {
        private const string ProbeTool = "agenthost_probe_tool";
        private const string ProbeResult = "agenthost_probe_result";

        // Calls the template does not write itself are written as text in the syntax it teaches (CallsAsText).
        public bool All => Tools && ToolResults;

        public bool CanWrite(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration>? tools)
        {
            if (tools is { Count: > 0 } && !Tools)
                return false;
            foreach (var message in messages)
            {
                foreach (var content in message.Contents)
                {
                    if ((content is FunctionCallContent && !ToolCalls && !Tools) || (content is FunctionResultContent && !ToolResults))
                        return false;
                }
            }
            return true;
        }

        public static TemplateCapabilities Probe(ChatFormat format)
        {
            var call = new FunctionCallContent("call_1", ProbeTool, new Dictionary<string, object?> { ["x"] = 1 });
            ChatMessage[] conversation = [new(ChatRole.User, "Hi"), new(ChatRole.Assistant, [call])];
            var tool = AIFunctionFactory.CreateDeclaration(ProbeTool, "A probe.", JsonDocument.Parse("{\"type\": \"object\", \"properties\": {}}").RootElement);
            var tools = Writes(format, [new(ChatRole.User, "Hi")], [tool], ProbeTool);
            return new TemplateCapabilities(
                tools || Writes(format, [new(ChatRole.User, "Hi")], [tool], ProbeTool, toolsInSystemMessage: true),
                Writes(format, conversation, null, ProbeTool),
                Writes(format, [.. conversation, new(ChatRole.Tool, [new FunctionResultContent("call_1", ProbeResult)]), new(ChatRole.User, "Thanks")], null, ProbeResult),
                SystemTools: !tools);
        }

        private static bool Writes(ChatFormat format, ChatMessage[] messages, AIFunctionDeclaration[]? tools, string probe, bool toolsInSystemMessage = false)
        {
            try
            {
                return format.RenderModelTemplate(messages, tools, addGenerationPrompt: true, toolsInSystemMessage).Text.Contains(probe, StringComparison.Ordinal);
            }
            catch (AgentHostException)
            {
                return false;
            }
        }
    }

    private void BuildModel(IReadOnlyList<ChatMessage> messages, IReadOnlyList<AIFunctionDeclaration>? tools, ScriptObject globals)
    {
        var start = 0;
        string? system = null;
        if (messages.Count > 0 && messages[0].Role == ChatRole.System)
        {
            system = Content(TextOf(messages[0], _ => false));
            start = 1;
        }

        var lastUser = -1;
        for (var i = start; i < messages.Count; i++)
        {
            if (messages[i].Role == ChatRole.User)
                lastUser = i;
        }

        var callNames = new Dictionary<string, string>(StringComparer.Ordinal);
        var list = new ScriptArray();
        ScriptArray? previousToolResults = null; // the tool turn being extended, if the last message was one
        for (var i = start; i < messages.Count; i++)
        {
            var message = messages[i];
            var role = RoleOf(message);
            var calls = new ScriptArray();
            var results = new ScriptArray();
            var text = TextOf(message, content =>
            {
                switch (content)
                {
                    case FunctionCallContent call when role == "assistant":
                        callNames[call.CallId] = call.Name;
                        calls.Add(new ScriptObject
                        {
                            ["id"] = Content(call.CallId),
                            ["id_json"] = Content(JsonText.Quote(call.CallId)),
                            ["name"] = Content(call.Name),
                            ["name_json"] = Content(JsonText.Quote(call.Name)),
                            ["arguments"] = Content(ArgumentsJson(call.Arguments)),
                        });
                        return true;
                    case FunctionResultContent result when role == "tool":
                        var resultText = ResultText(result);
                        results.Add(new ScriptObject
                        {
                            ["id"] = Content(result.CallId),
                            ["id_json"] = Content(JsonText.Quote(result.CallId)),
                            ["name"] = Content(callNames.GetValueOrDefault(result.CallId, string.Empty)),
                            ["content"] = Content(resultText),
                            ["content_json"] = Content(JsonText.Quote(resultText)),
                        });
                        return true;
                    default:
                        return false;
                }
            });

            if (role == "tool")
            {
                // A tool message's text (if any) is its result; consecutive tool messages form one turn.
                if (results.Count == 0 && text.Length > 0)
                {
                    results.Add(new ScriptObject
                    {
                        ["id"] = string.Empty, ["id_json"] = "\"\"", ["name"] = string.Empty,
                        ["content"] = Content(text), ["content_json"] = Content(JsonText.Quote(text)),
                    });
                }
                if (previousToolResults is not null)
                {
                    foreach (var result in results)
                        previousToolResults.Add(result);
                    continue;
                }
                text = string.Empty;
            }

            previousToolResults = role == "tool" ? results : null;
            list.Add(new ScriptObject
            {
                ["role"] = role,
                ["content"] = Content(text),
                ["has_content"] = text.Length > 0,
                ["is_last_user"] = i == lastUser,
                ["tool_calls"] = calls,
                ["tool_results"] = results,
            });
        }

        var toolList = new ScriptArray();
        if (tools is not null)
        {
            foreach (var tool in tools)
            {
                var parameters = JsonText.Write(tool.JsonSchema);
                var json = $"{{\"type\": \"function\", \"function\": {{\"name\": {JsonText.Quote(tool.Name)}, \"description\": {JsonText.Quote(tool.Description ?? string.Empty)}, \"parameters\": {parameters}}}}}";
                toolList.Add(new ScriptObject
                {
                    ["name"] = Content(tool.Name),
                    ["description"] = Content(tool.Description ?? string.Empty),
                    ["parameters"] = Content(parameters),
                    ["json"] = Content(json),
                });
            }
        }

        globals["system"] = system;
        globals["messages"] = list;
        globals["tools"] = toolList;
    }

    private string RoleOf(ChatMessage message)
    {
        if (message.Role == ChatRole.System)
            return "system";
        if (message.Role == ChatRole.User)
            return "user";
        if (message.Role == ChatRole.Assistant)
            return "assistant";
        if (message.Role == ChatRole.Tool)
            return "tool";
        throw new AgentHostException(ErrorKind.InvalidArgument, $"Chat format '{Name}' cannot render a message with role '{message.Role}'; the roles are system, user, assistant and tool.");
    }

    // Concatenates a message's text parts (as ChatMessage.Text does); other parts go to `other`, which
    // returns false for content this format cannot write.
    private string TextOf(ChatMessage message, Func<AIContent, bool> other)
    {
        var text = new StringBuilder();
        foreach (var content in message.Contents)
        {
            switch (content)
            {
                case TextContent part:
                    text.Append(part.Text);
                    break;
                case TextReasoningContent or UsageContent:
                    break; // earlier reasoning and usage reports are not part of the conversation the model sees
                default:
                    if (!other(content))
                    {
                        throw new AgentHostException(ErrorKind.InvalidArgument,
                            $"Chat format '{Name}' cannot render {content.GetType().Name} in a {message.Role} message; it writes text, function calls (assistant) and function results (tool).");
                    }
                    break;
            }
        }
        return text.ToString();
    }

    private static string ArgumentsJson(IDictionary<string, object?>? arguments)
    {
        if (arguments is null || arguments.Count == 0)
            return "{}";
        var builder = new StringBuilder("{");
        var first = true;
        foreach (var (key, value) in arguments)
        {
            if (!first)
                builder.Append(", ");
            first = false;
            builder.Append(JsonText.Quote(key)).Append(": ").Append(JsonText.Write(value));
        }
        return builder.Append('}').ToString();
    }

    internal static string ResultText(FunctionResultContent result) => result.Result switch
    {
        null when result.Exception is not null => $"Error: {result.Exception.Message}",
        null => string.Empty,
        string text => text,
        JsonElement { ValueKind: JsonValueKind.String } element => element.GetString()!,
        var value => JsonText.Write(value),
    };

    private static string Content(string text)
    {
        if (text.Length == 0)
            return text;
        if (text.Contains(ContentStart) || text.Contains(ContentEnd))
            text = text.Replace(ContentStart, '\uFFFD').Replace(ContentEnd, '\uFFFD');
        return ContentStart + text + ContentEnd;
    }

    // Scriban's string.strip would only see the content marks; this trims the text inside them.
    private static string TextStrip(string? value)
    {
        if (string.IsNullOrEmpty(value))
            return string.Empty;
        var first = 0;
        while (first < value.Length && (char.IsWhiteSpace(value[first]) || IsMark(value[first])))
            first++;
        var last = value.Length - 1;
        while (last >= first && (char.IsWhiteSpace(value[last]) || IsMark(value[last])))
            last--;
        var result = new StringBuilder();
        AppendMarks(value, 0, first, result);
        result.Append(value, first, last - first + 1);
        AppendMarks(value, last + 1, value.Length, result);
        return result.ToString();
    }

    private static bool IsMark(char c) => c is ContentStart or ContentEnd;

    private static void AppendMarks(string value, int from, int to, StringBuilder result)
    {
        for (var i = from; i < to; i++)
        {
            if (IsMark(value[i]))
                result.Append(value[i]);
        }
    }

    private static List<PromptSegment> Split(string text)
    {
        var segments = new List<PromptSegment>();
        var current = new StringBuilder();
        var inContent = false;

        void Flush(bool markup)
        {
            if (current.Length == 0)
                return;
            if (segments.Count > 0 && segments[^1].IsMarkup == markup)
                segments[^1] = new PromptSegment(segments[^1].Text + current, markup);
            else
                segments.Add(new PromptSegment(current.ToString(), markup));
            current.Clear();
        }

        foreach (var c in text)
        {
            if (c == ContentStart)
            {
                if (!inContent)
                {
                    Flush(markup: true);
                    inContent = true;
                }
            }
            else if (c == ContentEnd)
            {
                if (inContent)
                {
                    Flush(markup: false);
                    inContent = false;
                }
            }
            else
            {
                current.Append(c);
            }
        }
        // A template that cut a content value in half leaves it open: the rest stays content, never markup.
        Flush(markup: !inContent);
        return segments;
    }
}
