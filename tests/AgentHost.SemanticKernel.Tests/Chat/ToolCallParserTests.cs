using System.Text;
using System.Text.Json;
using AgentHost.Extensions.AI.Chat;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Chat;

/// <summary>Parser tests on transcripts written the way each model family emits them.</summary>
public sealed class ToolCallParserTests
{
    // Qwen2.5 / Hermes 2 Pro: each call in its own block, the JSON on its own line.
    private const string HermesOne =
        "<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": {\"location\": \"San Francisco, CA, USA\", \"unit\": \"celsius\"}}\n</tool_call>";

    private const string HermesTwo =
        "<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": {\"location\": \"Paris, France\"}}\n</tool_call>\n" +
        "<tool_call>\n{\"name\": \"get_current_wind_speed\", \"arguments\": {\"location\": \"Paris, France\"}}\n</tool_call>";

    private const string HermesWithText =
        "I'll look up the temperature for you.\n\n" + HermesOne;

    // Llama 3.1 JSON tool calling: the reply is the call, "parameters" holds the arguments.
    private const string Llama3One = "{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"San Francisco, CA\", \"unit\": \"Fahrenheit\"}}";

    // Mistral v0.3 / Small: [TOOL_CALLS] then a JSON array of calls.
    private const string MistralTwo =
        "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"format\": \"celsius\"}}, " +
        "{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Berlin, Germany\", \"format\": \"celsius\"}, \"id\": \"a1B2c3D4e\"}]";

    private static (string Text, List<FunctionCallContent> Calls) Collect(IEnumerable<AIContent> contents)
    {
        var text = new StringBuilder();
        var calls = new List<FunctionCallContent>();
        foreach (var content in contents)
        {
            if (content is TextContent t)
                text.Append(t.Text);
            else
                calls.Add(Assert.IsType<FunctionCallContent>(content));
        }
        return (text.ToString(), calls);
    }

    private static (string Text, List<FunctionCallContent> Calls) Parse(ToolCallFormat format, string reply) =>
        Collect(format.CreateParser().ParseAll(reply));

    // Streams the reply in pieces of random sizes (fixed seed).
    private static (string Text, List<FunctionCallContent> Calls, ToolCallParser Parser) Stream(ToolCallFormat format, string reply, int seed)
    {
        var parser = format.CreateParser();
        var random = new Random(seed);
        var contents = new List<AIContent>();
        for (var i = 0; i < reply.Length;)
        {
            var length = Math.Min(reply.Length - i, random.Next(1, 8));
            contents.AddRange(parser.Push(reply.Substring(i, length)));
            i += length;
        }
        contents.AddRange(parser.Complete());
        var (text, calls) = Collect(contents);
        return (text, calls, parser);
    }

    private static string Arg(FunctionCallContent call, string name) => ((JsonElement)call.Arguments![name]!).ToString();

    [Fact]
    public void Hermes_reads_one_call()
    {
        var (text, calls) = Parse(ToolCallFormat.Hermes, HermesOne);
        Assert.Equal("", text);
        var call = Assert.Single(calls);
        Assert.Equal("get_current_temperature", call.Name);
        Assert.Equal("San Francisco, CA, USA", Arg(call, "location"));
        Assert.Equal("celsius", Arg(call, "unit"));
        Assert.Matches("^[A-Za-z0-9]{9}$", call.CallId);
    }

    [Fact]
    public void Hermes_reads_several_calls_and_drops_the_whitespace_between_them()
    {
        var (text, calls) = Parse(ToolCallFormat.Hermes, HermesTwo + "\n");
        Assert.Equal("", text);
        Assert.Equal(["get_current_temperature", "get_current_wind_speed"], calls.Select(c => c.Name));
        Assert.NotEqual(calls[0].CallId, calls[1].CallId);
    }

    [Fact]
    public void Hermes_keeps_text_before_and_after_calls()
    {
        var (text, calls) = Parse(ToolCallFormat.Hermes, HermesWithText + "\nDone.");
        Assert.Equal("I'll look up the temperature for you.\n\n\nDone.", text);
        Assert.Single(calls);
    }

    [Fact]
    public void Hermes_malformed_json_comes_back_as_the_text_it_was()
    {
        const string reply = "Sure.\n<tool_call>\n{\"name\": \"get_current_temperature\", \"arguments\": {\"location\": }\n</tool_call>";
        var parser = ToolCallFormat.Hermes.CreateParser();
        var (text, calls) = Collect(parser.ParseAll(reply));
        Assert.Empty(calls);
        Assert.Equal(reply, text);
        Assert.Contains("not valid JSON", Assert.Single(parser.Problems));
    }

    [Theory]
    [InlineData("<tool_call>\n{\"arguments\": {\"a\": 1}}\n</tool_call>", "no \"name\"")]
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": [1, 2]}\n</tool_call>", "not a JSON object")]
    [InlineData("<tool_call>\n[\"f\"]\n</tool_call>", "must be a JSON object")]
    [InlineData("<tool_call>\n\"f\"\n</tool_call>", "must be a JSON object")]
    [InlineData("<tool_call>\n{\"name\": \"f\", \"arguments\": \"{not json\"}\n</tool_call>", "not a JSON object")]
    public void Hermes_calls_of_the_wrong_shape_come_back_as_text_with_a_reason(string reply, string reason)
    {
        var parser = ToolCallFormat.Hermes.CreateParser();
        var (text, calls) = Collect(parser.ParseAll(reply));
        Assert.Empty(calls);
        Assert.Equal(reply, text);
        Assert.Contains(reason, Assert.Single(parser.Problems));
    }

    [Fact]
    public void Hermes_call_cut_off_before_the_closing_tag_is_still_read_when_its_json_is_complete()
    {
        var (text, calls) = Parse(ToolCallFormat.Hermes, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n");
        Assert.Equal("", text);
        Assert.Equal("f", Assert.Single(calls).Name);

        var cut = "<tool_call>\n{\"name\": \"f\", \"argu";
        var (cutText, cutCalls) = Parse(ToolCallFormat.Hermes, cut);
        Assert.Empty(cutCalls);
        Assert.Equal(cut, cutText);
    }

    [Fact]
    public void Arguments_written_as_a_json_string_and_missing_arguments_are_accepted()
    {
        var (_, calls) = Parse(ToolCallFormat.Hermes,
            "<tool_call>\n{\"name\": \"f\", \"arguments\": \"{\\\"x\\\": 1}\"}\n</tool_call><tool_call>\n{\"name\": \"now\"}\n</tool_call>");
        Assert.Equal(2, calls.Count);
        Assert.Equal("1", Arg(calls[0], "x"));
        Assert.Empty(calls[1].Arguments!);
    }

    [Fact]
    public void Streaming_releases_text_as_soon_as_it_cannot_be_a_marker()
    {
        var parser = ToolCallFormat.Hermes.CreateParser();
        Assert.Equal("Hello ", Collect(parser.Push("Hello <tool")).Text);
        Assert.Equal("<toolbox> is", Collect(parser.Push("box> is")).Text);
        Assert.Equal(" a", Collect(parser.Push(" a<")).Text);
        Assert.Equal("<b", Collect(parser.Push("b")).Text);
    }

    [Fact]
    public void Streaming_holds_back_only_a_possible_marker_and_releases_it_at_the_end()
    {
        var parser = ToolCallFormat.Hermes.CreateParser();
        Assert.Equal("x ", Collect(parser.Push("x <tool_c")).Text);
        Assert.Equal("<tool_c", Collect(parser.Complete()).Text);
        Assert.Empty(parser.Problems);
    }

    [Fact]
    public void Llama3_reads_a_json_reply_as_a_call_with_parameters()
    {
        var (text, calls) = Parse(ToolCallFormat.Llama3Json, Llama3One);
        Assert.Equal("", text);
        var call = Assert.Single(calls);
        Assert.Equal("get_current_conditions", call.Name);
        Assert.Equal("Fahrenheit", Arg(call, "unit"));
    }

    [Fact]
    public void Llama3_reads_calls_after_the_python_tag_and_several_calls_in_a_row()
    {
        var (text, calls) = Parse(ToolCallFormat.Llama3Json, "<|python_tag|>" + Llama3One + "\n" + Llama3One.Replace("San Francisco, CA", "Boston, MA", StringComparison.Ordinal));
        Assert.Equal("", text);
        Assert.Equal(["San Francisco, CA", "Boston, MA"], calls.Select(c => Arg(c, "location")));
    }

    [Fact]
    public void Llama3_plain_answers_and_json_that_is_not_a_call_stay_text()
    {
        var parser = ToolCallFormat.Llama3Json.CreateParser();
        Assert.Equal("The weather", Collect(parser.Push("The weather")).Text); // streamed at once: cannot be a call
        Assert.Equal(" is {\"name\": \"x\"} nice.", Collect(parser.Push(" is {\"name\": \"x\"} nice.")).Text);
        Assert.Empty(Collect(parser.Complete()).Text);

        var (text, calls) = Parse(ToolCallFormat.Llama3Json, "{\"answer\": 42}");
        Assert.Empty(calls);
        Assert.Equal("{\"answer\": 42}", text);
    }

    [Fact]
    public void Given_the_tool_names_a_call_to_another_name_stays_text()
    {
        const string reply = "{\"name\": \"Bob\", \"parameters\": {\"age\": 3}}";
        var parser = ToolCallFormat.Llama3Json.CreateParser(["get_current_conditions"]);
        var (text, calls) = Collect(parser.ParseAll(reply));
        Assert.Empty(calls);
        Assert.Equal(reply, text);
        Assert.Contains("'Bob'", Assert.Single(parser.Problems));

        Assert.Single(Collect(ToolCallFormat.Llama3Json.CreateParser(["get_current_conditions"]).ParseAll(Llama3One)).Calls);
        Assert.Single(Parse(ToolCallFormat.Llama3Json, reply).Calls); // without names, any well-formed call counts
    }

    [Theory]
    [InlineData("{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"Paris\"", "ended inside")]
    [InlineData("{\"name\": get_current_conditions, \"parameters\": {}}", "not valid JSON")]
    [InlineData("<|python_tag|>{\"name\": \"f\", \"parameters\": \"Paris\"}", "not a JSON object")]
    public void Llama3_malformed_calls_come_back_as_text(string reply, string reason)
    {
        var parser = ToolCallFormat.Llama3Json.CreateParser();
        var (text, calls) = Collect(parser.ParseAll(reply));
        Assert.Empty(calls);
        Assert.Equal(reply, text);
        Assert.Contains(reason, Assert.Single(parser.Problems));
    }

    [Fact]
    public void Llama3_text_after_a_call_is_kept()
    {
        var (text, calls) = Parse(ToolCallFormat.Llama3Json, Llama3One + " I called it.");
        Assert.Single(calls);
        Assert.Equal(" I called it.", text);
    }

    [Fact]
    public void Mistral_reads_an_array_of_calls_and_keeps_given_ids()
    {
        var (text, calls) = Parse(ToolCallFormat.Mistral, MistralTwo);
        Assert.Equal("", text);
        Assert.Equal(2, calls.Count);
        Assert.Equal(["Paris, France", "Berlin, Germany"], calls.Select(c => Arg(c, "location")));
        Assert.Matches("^[A-Za-z0-9]{9}$", calls[0].CallId);
        Assert.Equal("a1B2c3D4e", calls[1].CallId);
    }

    [Fact]
    public void Mistral_keeps_text_before_the_marker_and_reads_a_bare_array_when_the_marker_token_was_hidden()
    {
        var (text, calls) = Parse(ToolCallFormat.Mistral, "Let me check both cities." + MistralTwo);
        Assert.Equal("Let me check both cities.", text);
        Assert.Equal(2, calls.Count);

        var (bareText, bareCalls) = Parse(ToolCallFormat.Mistral, MistralTwo["[TOOL_CALLS] ".Length..]);
        Assert.Equal("", bareText);
        Assert.Equal(2, bareCalls.Count);
    }

    [Fact]
    public void Mistral_malformed_calls_come_back_as_text()
    {
        const string reply = "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris\"}}, {\"arguments\": {}}]";
        var parser = ToolCallFormat.Mistral.CreateParser();
        var (text, calls) = Collect(parser.ParseAll(reply));
        Assert.Empty(calls); // all or nothing: half a batch of calls is not run
        Assert.Equal(reply, text);
        Assert.Single(parser.Problems);

        var notJson = ToolCallFormat.Mistral.CreateParser();
        Assert.Equal("[TOOL_CALLS] sorry", Collect(notJson.ParseAll("[TOOL_CALLS] sorry")).Text);
        Assert.Single(notJson.Problems);

        var unterminated = ToolCallFormat.Mistral.CreateParser();
        Assert.Equal("[TOOL_CALLS] [{\"name\": \"f\"", Collect(unterminated.ParseAll("[TOOL_CALLS] [{\"name\": \"f\"")).Text);
        Assert.Contains("ended inside", Assert.Single(unterminated.Problems));
    }

    [Fact]
    public void Mistral_reads_the_newer_name_args_form()
    {
        // Mistral Small 3.2 / Magistral / Devstral: one [TOOL_CALLS] per call, the name, then [ARGS] and the arguments.
        const string reply = "[TOOL_CALLS]get_current_weather[ARGS]{\"location\": \"Paris, France\"}[TOOL_CALLS]get_time[ARGS]{}";
        var (text, calls) = Parse(ToolCallFormat.Mistral, reply);
        Assert.Equal("", text);
        Assert.Equal(["get_current_weather", "get_time"], calls.Select(c => c.Name));
        Assert.Equal("Paris, France", Arg(calls[0], "location"));

        var bad = ToolCallFormat.Mistral.CreateParser();
        Assert.Equal("[TOOL_CALLS]get weather[ARGS]{}", Collect(bad.ParseAll("[TOOL_CALLS]get weather[ARGS]{}")).Text);
        var badArgs = ToolCallFormat.Mistral.CreateParser();
        Assert.Equal("[TOOL_CALLS]f[ARGS][1]", Collect(badArgs.ParseAll("[TOOL_CALLS]f[ARGS][1]")).Text);
        Assert.Contains("not a JSON object", Assert.Single(badArgs.Problems));
    }

    [Fact]
    public void Generic_reads_compact_calls_mixed_with_text()
    {
        const string reply = "First I add.<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}</tool_call>" +
                             "<tool_call>{\"name\": \"mul\", \"arguments\": {\"a\": 3, \"b\": {\"nested\": \"}</tool_call>\"}}}</tool_call>";
        var (text, calls) = Parse(ToolCallFormat.Generic, reply);
        // A closing tag inside a JSON string ends the block early: that call is malformed and stays text.
        Assert.Equal("add", Assert.Single(calls).Name);
        Assert.Equal("First I add." + reply[reply.IndexOf("<tool_call>{\"name\": \"mul\"", StringComparison.Ordinal)..], text);
    }

    public static TheoryData<string, string> Transcripts => new()
    {
        { "hermes", HermesOne },
        { "hermes", HermesTwo },
        { "hermes", HermesWithText + "\nAnything else?" },
        { "hermes", "Use <tool_call> tags like <tool_call>this</tool_call> < >" },
        { "llama3-json", Llama3One },
        { "llama3-json", "  " + Llama3One + "\n\n" + Llama3One },
        { "llama3-json", "{\"answer\": {\"nested\": [1, 2, \"}\"]}} and more" },
        { "llama3-json", "Plain text answer with { braces }." },
        { "mistral", MistralTwo },
        { "mistral", "Text first. " + MistralTwo + " and after." },
        { "mistral", "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {\"s\": \"a \\\"quoted\\\" ] } value\"}}]" },
        { "mistral", "Checking.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Rome\"}" },
        { "generic", "<tool_call>{\"name\": \"add\", \"arguments\": {\"a\": 1}}</tool_call> then text <tool_call>broken</tool_call>" },
    };

    private static ToolCallFormat FormatNamed(string name) => name switch
    {
        "hermes" => ToolCallFormat.Hermes,
        "llama3-json" => ToolCallFormat.Llama3Json,
        "mistral" => ToolCallFormat.Mistral,
        _ => ToolCallFormat.Generic,
    };

    [Theory]
    [MemberData(nameof(Transcripts))]
    public void Streaming_in_any_pieces_gives_the_same_text_and_calls_as_parsing_at_once(string format, string reply)
    {
        var toolFormat = FormatNamed(format);
        var (text, calls) = Parse(toolFormat, reply);
        for (var seed = 0; seed < 20; seed++)
        {
            var (streamedText, streamedCalls, _) = Stream(toolFormat, reply, seed);
            Assert.Equal(text, streamedText);
            Assert.Equal(calls.Select(c => (c.Name, JsonSerializer.Serialize(c.Arguments))), streamedCalls.Select(c => (c.Name, JsonSerializer.Serialize(c.Arguments))));
        }
    }

    [Fact]
    public void Random_marker_soup_never_throws_and_without_calls_every_character_comes_back()
    {
        string[] pieces = ["<tool_call>", "</tool_call>", "<tool_", "[TOOL_CALLS]", "[ARGS]", "get_x", "<|python_tag|>", "{", "}", "[", "]", "\"name\"", ": ", "\"f\"", ",", "\"arguments\"", "\\", "\"", " ", "\n", "text"];
        var random = new Random(1234);
        foreach (var format in new[] { ToolCallFormat.Hermes, ToolCallFormat.Llama3Json, ToolCallFormat.Mistral, ToolCallFormat.Generic })
        {
            for (var n = 0; n < 300; n++)
            {
                var reply = string.Concat(Enumerable.Range(0, random.Next(1, 30)).Select(_ => pieces[random.Next(pieces.Length)]));
                var (text, calls, _) = Stream(format, reply, n);
                if (calls.Count == 0)
                    Assert.Equal(reply, text); // only whitespace right after a call is ever dropped
                foreach (var call in calls)
                    Assert.False(string.IsNullOrEmpty(call.Name));
            }
        }
    }

    [Fact]
    public void Pushing_after_complete_is_a_programming_error()
    {
        var parser = ToolCallFormat.Generic.CreateParser();
        parser.Complete();
        Assert.Empty(parser.Complete());
        Assert.Throws<InvalidOperationException>(() => parser.Push("x"));
    }

    [Fact]
    public void Each_format_describes_its_call_for_a_grammar()
    {
        Assert.Equal("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_call>", ToolCallFormat.Hermes.FormatCall("f", "{\"a\": 1}"));
        Assert.Equal("{\"name\": \"f\", \"parameters\": {\"a\": 1}}", ToolCallFormat.Llama3Json.FormatCall("f", "{\"a\": 1}"));
        Assert.Equal("[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}]", ToolCallFormat.Mistral.FormatCall("f", "{\"a\": 1}"));
        Assert.Equal("<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": 1}}</tool_call>", ToolCallFormat.Generic.FormatCall("f", "{\"a\": 1}"));
        foreach (var format in new[] { ToolCallFormat.Hermes, ToolCallFormat.Llama3Json, ToolCallFormat.Mistral, ToolCallFormat.Generic })
            Assert.StartsWith(format.CallStart, format.FormatCall("f", "{}"));
    }
}
