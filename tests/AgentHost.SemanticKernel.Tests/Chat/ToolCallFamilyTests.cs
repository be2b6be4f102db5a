using System.Text;
using System.Text.Json;
using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Chat;

/// <summary>
/// Every family's own call syntax, written as the models write it (llama.cpp's chat tests and the models' templates):
/// single calls, several, after leading text, malformed (stays text, with a reason), and streamed split anywhere.
/// </summary>
public sealed class ToolCallFamilyTests
{
    private const string DsCalls = "<｜tool▁calls▁begin｜>";
    private const string DsCallsEnd = "<｜tool▁calls▁end｜>";
    private const string DsCall = "<｜tool▁call▁begin｜>";
    private const string DsCallEnd = "<｜tool▁call▁end｜>";
    private const string DsSep = "<｜tool▁sep｜>";

    private static string DsOne(string name, string json) => $"{DsCall}function{DsSep}{name}\n```json\n{json}\n```{DsCallEnd}";

    /// <summary>(format, reply, expected text, expected calls as "name arguments-json").</summary>
    public static TheoryData<string, string, string, string[]> Replies => new()
    {
        // Hermes / Qwen 2.5 / Qwen 3
        { "hermes", "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>", "", ["get_weather {\"city\":\"Paris\"}"] },
        { "hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {\"x\": 1}}\n</tool_call>", "", ["a {}", "b {\"x\":1}"] },
        { "hermes", "Let me check.\n<tool_call>\n{\"name\": \"a\", \"arguments\": {}}\n</tool_call>", "Let me check.\n", ["a {}"] },

        // Llama 3.x JSON
        { "llama3-json", "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", ["get_weather {\"city\":\"Paris\"}"] },
        { "llama3-json", "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "", ["get_weather {\"city\":\"Paris\"}"] },
        { "llama3-json", "{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", \"parameters\": {\"y\": 2}}", "", ["a {\"x\":1}", "b {\"y\":2}"] },
        { "llama3-json", "{\"name\": \"a\", \"parameters\": {\"x\": 1}};{\"name\": \"b\", \"parameters\": {}}\n{\"name\": \"c\", \"arguments\": {}}", "", ["a {\"x\":1}", "b {}", "c {}"] },
        { "llama3-json", "Let me look that up. {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", "Let me look that up. ", ["get_weather {\"city\":\"Paris\"}"] },
        { "llama3-json", "Sure:\n{\"type\": \"function\", \"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}", "Sure:\n", ["get_weather {\"city\":\"Rome\"}"] },
        { "llama3-json", "{\"name\": \"a\", \"parameters\": {}}; and that is all", "; and that is all", ["a {}"] },
        { "llama3-json", "JSON like {\"name\": \"x\"} is not a call without parameters.", "JSON like {\"name\": \"x\"} is not a call without parameters.", [] },

        // Mistral, both forms
        { "mistral", "[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"arguments\": {}}]", "", ["a {\"x\":1}", "b {}"] },
        { "mistral", "[TOOL_CALLS]a[ARGS]{\"x\": 1}[TOOL_CALLS]b[ARGS]{}", "", ["a {\"x\":1}", "b {}"] },
        { "mistral", "Checking.[TOOL_CALLS]a[ARGS]{\"x\": [1, 2]}", "Checking.", ["a {\"x\":[1,2]}"] },

        // Phi-4-mini
        { "phi4-mini", "<|tool_call|>[{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]<|/tool_call|>", "", ["get_weather {\"city\":\"Paris\"}"] },
        { "phi4-mini", "<|tool_call|>[{\"name\": \"a\", \"arguments\": {\"tags\": [\"x\", \"y\"]}}, {\"type\": \"function\", \"function\": {\"name\": \"b\", \"arguments\": {}}}]<|/tool_call|>", "", ["a {\"tags\":[\"x\",\"y\"]}", "b {}"] },
        { "phi4-mini", "Sure.<|tool_call|>[{\"name\": \"a\", \"arguments\": {}}]<|/tool_call|>\n<|tool_call|>{\"name\": \"b\", \"arguments\": {}}<|/tool_call|>", "Sure.", ["a {}", "b {}"] },
        { "phi4-mini", "<|tool_call|>[{\"name\": \"a\", \"arguments\": {}}] and done", " and done", ["a {}"] },
        { "phi4-mini", "functools[{\"name\": \"a\", \"arguments\": {\"q\": \"]\"}}]", "", ["a {\"q\":\"]\"}"] },
        { "phi4-mini", "Python's functools module is handy.", "Python's functools module is handy.", [] },

        // Gemma (tool_code with Python calls or JSON, fenced json, bare JSON)
        { "gemma", "```tool_code\nget_weather(city=\"Paris\", days=3)\n```", "", ["get_weather {\"city\":\"Paris\",\"days\":3}"] },
        { "gemma", "```tool_code\na(x='it\\'s', flag=True, none=None)\nb(items=[1, 2.5, \"z\"], opts={\"k\": (1, 2)})\n```", "", ["a {\"x\":\"it's\",\"flag\":true,\"none\":null}", "b {\"items\":[1,2.5,\"z\"],\"opts\":{\"k\":[1,2]}}"] },
        { "gemma", "```tool_code\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```\n```tool_code\n{\"name\": \"b\", \"arguments\": {}}\n```", "", ["get_weather {\"city\":\"Paris\"}", "b {}"] },
        { "gemma", "I will check the weather.\n\n```tool_code\nget_weather(city=\"Paris\")\n```", "I will check the weather.\n\n", ["get_weather {\"city\":\"Paris\"}"] },
        { "gemma", "```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```", "", ["get_weather {\"city\":\"Paris\"}"] },
        { "gemma", "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", "", ["get_weather {\"city\":\"Paris\"}"] },
        { "gemma", "{\"tool_calls\": [{\"name\": \"a\", \"arguments\": {}}, {\"name\": \"b\", \"arguments\": {}}]}", "", ["a {}", "b {}"] },

        // DeepSeek-R1
        { "deepseek-r1", DsCalls + DsOne("get_weather", "{\"city\": \"Paris\"}") + DsCallsEnd, "", ["get_weather {\"city\":\"Paris\"}"] },
        { "deepseek-r1", DsCalls + DsOne("a", "{\"x\": 1}") + "\n" + DsOne("b", "{}") + DsCallsEnd, "", ["a {\"x\":1}", "b {}"] },
        { "deepseek-r1", "I need the weather.\n\n" + DsCalls + DsOne("get_weather", "{\"city\": \"Paris\"}") + DsCallsEnd, "I need the weather.\n\n", ["get_weather {\"city\":\"Paris\"}"] },
        { "deepseek-r1", DsOne("a", "{\"x\": \"```\"}"), "", ["a {\"x\":\"```\"}"] },
        { "deepseek-r1", DsCalls + DsOne("a", "{}"), "", ["a {}"] },

        // Generic
        { "generic", "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>", "", ["a {}", "b {}"] },
    };

    /// <summary>(format, reply, a word the problem mentions): each stays exactly the text it was.</summary>
    public static TheoryData<string, string, string> Malformed => new()
    {
        { "hermes", "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": }\n</tool_call>", "not valid JSON" },
        { "llama3-json", "{\"name\": \"a\", \"parameters\": {\"x\": }}", "not valid JSON" },
        { "llama3-json", "Text {\"name\": \"a\", \"parameters\": {\"x\": 1}", "ended inside" },
        { "llama3-json", "Text {\"name\": \"a\"} more", "no \"parameters\"" },
        { "mistral", "[TOOL_CALLS]a[ARGS][1]", "not a JSON object" },
        { "phi4-mini", "<|tool_call|>[{\"name\": \"a\", \"arguments\": \"Paris\"}]<|/tool_call|>", "not a JSON object" },
        { "phi4-mini", "<|tool_call|>sorry<|/tool_call|>", "not followed by a JSON call" },
        { "phi4-mini", "<|tool_call|>[{\"arguments\": {}}]<|/tool_call|>", "no \"name\"" },
        { "gemma", "```tool_code\nprint(text=\"hi\"\n```", "not closed" },
        { "gemma", "```tool_code\nweather(\"Paris\")\n```", "key=value" },
        { "gemma", "```json\n{\"answer\": 42}\n```", "no \"name\"" },
        { "gemma", "```tool_code\nf(x=open('a'))\n```", "not a Python literal" },
        { "deepseek-r1", DsCalls + DsOne("a", "{\"x\": }") + DsCallsEnd, "not valid JSON" },
        { "deepseek-r1", DsCalls + "just text" + DsCallsEnd, "shape" },
        { "deepseek-r1", DsCalls + DsCall + "function" + DsSep + "a\n```json\n{\"x\": 1" , "not a complete JSON" },
    };

    private static readonly JsonSerializerOptions _json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static ToolCallFormat Format(string name) => ToolCallFormat.Find(name) ?? throw new ArgumentException(name);

    private static (string Text, string[] Calls) Collect(IEnumerable<AIContent> contents)
    {
        var text = new StringBuilder();
        var calls = new List<string>();
        foreach (var content in contents)
        {
            if (content is TextContent t)
                text.Append(t.Text);
            else
            {
                var call = Assert.IsType<FunctionCallContent>(content);
                Assert.False(string.IsNullOrEmpty(call.CallId));
                calls.Add($"{call.Name} {JsonSerializer.Serialize(call.Arguments, _json)}");
            }
        }
        return (text.ToString(), [.. calls]);
    }

    private static (string Text, string[] Calls) Stream(ToolCallFormat format, IEnumerable<string> pieces)
    {
        var parser = format.CreateParser();
        var contents = new List<AIContent>();
        foreach (var piece in pieces)
            contents.AddRange(parser.Push(piece));
        contents.AddRange(parser.Complete());
        return Collect(contents);
    }

    private static IEnumerable<string[]> Splits(string reply)
    {
        for (var i = 0; i <= reply.Length; i++)
            yield return [reply[..i], reply[i..]];
        for (var i = 0; i < reply.Length; i++)
        {
            for (var j = i + 1; j < reply.Length; j += 7)
                yield return [reply[..i], reply[i..j], reply[j..]];
        }
        yield return [.. reply.Select(c => c.ToString())];
    }

    [Theory]
    [MemberData(nameof(Replies))]
    public void Each_family_reads_its_own_calls(string format, string reply, string text, string[] calls)
    {
        var parser = Format(format).CreateParser();
        var (parsedText, parsedCalls) = Collect(parser.ParseAll(reply));
        Assert.True(calls.SequenceEqual(parsedCalls), $"calls: {string.Join(" | ", parsedCalls)}; problems: {string.Join(" | ", parser.Problems)}");
        Assert.Equal(text, parsedText);
        if (calls.Length > 0)
            Assert.Empty(parser.Problems);
    }

    [Theory]
    [MemberData(nameof(Replies))]
    public void Streamed_split_anywhere_or_one_character_at_a_time_gives_what_parsing_whole_gives(string format, string reply, string text, string[] calls)
    {
        foreach (var pieces in Splits(reply))
        {
            var (streamedText, streamedCalls) = Stream(Format(format), pieces);
            Assert.Equal(text, streamedText);
            Assert.Equal(calls, streamedCalls);
        }
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_calls_stay_the_text_they_were_and_the_problem_says_why(string format, string reply, string reason)
    {
        var parser = Format(format).CreateParser();
        var (text, calls) = Collect(parser.ParseAll(reply));
        Assert.Empty(calls);
        Assert.Equal(reply, text);
        Assert.True(parser.Problems.Any(p => p.Contains(reason, StringComparison.Ordinal)), string.Join(" | ", parser.Problems));

        foreach (var pieces in Splits(reply))
        {
            var (streamedText, streamedCalls) = Stream(Format(format), pieces);
            Assert.Empty(streamedCalls);
            Assert.Equal(reply, streamedText);
        }
    }

    [Fact]
    public void Calls_to_tools_not_offered_stay_text_in_every_family()
    {
        foreach (var format in ToolCallFormat.BuiltIn)
        {
            var reply = format.FormatCall("rm_rf", "{\"path\": \"/\"}");
            var parser = format.CreateParser(["get_weather"]);
            var (text, calls) = Collect(parser.ParseAll(reply));
            Assert.Empty(calls);
            Assert.Equal(reply, text);
            Assert.Contains("'rm_rf'", Assert.Single(parser.Problems));
        }
    }

    [Fact]
    public void Each_format_writes_a_call_its_parser_reads_back_and_that_starts_with_its_opener()
    {
        foreach (var format in ToolCallFormat.BuiltIn)
        {
            var written = format.FormatCall("get_weather", "{\"city\": \"Paris\", \"days\": 3}");
            Assert.StartsWith(format.CallStart, written);
            var (text, calls) = Collect(format.CreateParser(["get_weather"]).ParseAll("Checking. " + written));
            Assert.Equal("Checking. ", text);
            Assert.Equal(["get_weather {\"city\":\"Paris\",\"days\":3}"], calls);
        }
        Assert.Equal("<|tool_call|>[{\"name\": \"f\", \"arguments\": {}}]<|/tool_call|>", ToolCallFormat.Phi4Mini.FormatCall("f", "{}"));
        Assert.Equal("```tool_code\n{\"name\": \"f\", \"arguments\": {}}\n```", ToolCallFormat.Gemma.FormatCall("f", "{}"));
        Assert.Equal($"{DsCalls}{DsCall}function{DsSep}f\n```json\n{{}}\n```{DsCallEnd}{DsCallsEnd}", ToolCallFormat.DeepSeekR1.FormatCall("f", "{}"));
    }

    [Fact]
    public void Formats_are_found_by_name_and_only_thinking_families_split_reasoning()
    {
        Assert.Equal(["hermes", "llama3-json", "mistral", "phi4-mini", "gemma", "deepseek-r1", "generic"], ToolCallFormat.BuiltIn.Select(f => f.Name));
        Assert.Same(ToolCallFormat.Phi4Mini, ToolCallFormat.Find("PHI4-MINI"));
        Assert.Null(ToolCallFormat.Find("nope"));
        Assert.Equal(ReasoningTags.Think, ToolCallFormat.Hermes.ReasoningTags);
        Assert.Equal(ReasoningTags.Think, ToolCallFormat.DeepSeekR1.ReasoningTags);
        Assert.Null(ToolCallFormat.Generic.ReasoningTags); // the story models' plain format
        Assert.Null(ToolCallFormat.Llama3Json.ReasoningTags);

        var qwen25 = ToolCallFormat.Hermes.WithReasoning(null);
        Assert.Null(qwen25.ReasoningTags);
        Assert.Equal("hermes", qwen25.Name);
        Assert.Same(ToolCallFormat.Hermes, ToolCallFormat.Hermes.WithReasoning(ReasoningTags.Think));
    }

    [Theory]
    [InlineData("{%- for m in messages %}<|im_start|>{{ m.role }}{%- if tools %}<tool_call>{%- endif %}{%- endfor %}", "hermes", false)] // Qwen2.5
    [InlineData("<|im_start|>assistant\n<tool_call>\n{%- if '</think>' in content %}<think>\n{%- endif %}", "hermes", true)] // Qwen3
    [InlineData("{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>'}}{% if '</think>' in content %}", "deepseek-r1", true)]
    [InlineData("{{ '<|' + message['role'] + '|>' + message['content'] + '<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}", "phi4-mini", false)]
    [InlineData("{{ bos_token }}[AVAILABLE_TOOLS] {{ tools }}[/AVAILABLE_TOOLS][TOOL_CALLS] ", "mistral", false)]
    [InlineData("<|start_header_id|>ipython<|end_header_id|>{{- '<|python_tag|>' }}", "llama3-json", false)]
    [InlineData("{{ '<start_of_turn>' + role + '\n' }}", "gemma", false)]
    [InlineData("### Instruction: {{ content }}", "generic", false)]
    [InlineData(null, "generic", false)]
    public void A_chat_template_picks_the_familys_tool_call_format_and_whether_it_thinks(string? template, string expected, bool thinks)
    {
        var format = ToolCallFormat.FromChatTemplate(template);
        Assert.Equal(expected, format.Name);
        Assert.Equal(thinks ? ReasoningTags.Think : null, format.ReasoningTags);
    }

    [Fact]
    public void Random_marker_soup_never_throws_and_without_calls_every_character_comes_back()
    {
        string[] pieces = ["<|tool_call|>", "<|/tool_call|>", "functools", "```tool_code", "```json", "```", "(", ")", "=", "'", "f(x=1)",
            DsCalls, DsCallsEnd, DsCall, DsCallEnd, DsSep, "function", ";", "{", "}", "[", "]", "\"name\"", ": ", "\"f\"", ",", "\"arguments\"", "\"parameters\"", "\\", "\"", " ", "\n", "text"];
        var random = new Random(4321);
        foreach (var format in ToolCallFormat.BuiltIn)
        {
            for (var n = 0; n < 300; n++)
            {
                var reply = string.Concat(Enumerable.Range(0, random.Next(1, 30)).Select(_ => pieces[random.Next(pieces.Length)]));
                var whole = Collect(format.CreateParser().ParseAll(reply));
                var streamed = Stream(format, reply.Select(c => c.ToString()));
                Assert.Equal(whole.Text, streamed.Text);
                Assert.Equal(whole.Calls, streamed.Calls);
                if (whole.Calls.Length == 0)
                    Assert.Equal(reply, whole.Text);
            }
        }
    }
}
