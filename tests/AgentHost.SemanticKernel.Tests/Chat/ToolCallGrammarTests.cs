using System.Text;
using AgentHost.Extensions.AI;
using AgentHost.Extensions.AI.Chat;
using AgentHost.Llama.Grammar;
using Microsoft.Extensions.AI;

namespace AgentHost.SemanticKernel.Tests.Chat;

/// <summary>
/// The grammars that force each family's calls: Required accepts exactly the family's own call (what FormatCall writes)
/// and Auto leaves text free until the family's opener, then forces the rest of the call. Checked byte by byte against
/// llama.cpp's grammar engine with stories260K's byte tokens.
/// </summary>
[Collection(ChatModelCollection.Name)]
public sealed class ToolCallGrammarTests(ChatModelFixture fixture)
{
    private static readonly AIFunction _weather = AIFunctionFactory.Create((string city, int days) => $"{city} {days}", "get_weather", "Weather in a city.");

    private const string Arguments = "{\"city\":\"Paris\",\"days\":3}";

    private int[] ByteTokens(string text)
    {
        var vocabulary = fixture.Model.Vocabulary;
        var byByte = new Dictionary<byte, int>();
        for (var token = 0; token < vocabulary.Count; token++)
        {
            var bytes = vocabulary.GetBytes(token);
            if (bytes.Length == 1)
                byByte.TryAdd(bytes[0], token);
        }
        return [.. Encoding.UTF8.GetBytes(text).Select(b => byByte[b])];
    }

    // Whether the grammar lets the model write exactly `text` and end there.
    private bool Accepts(GrammarConstraint grammar, string text)
    {
        using var sampler = GrammarSampler.Create(fixture.Model, grammar);
        foreach (var token in ByteTokens(text))
        {
            if (!sampler.Allows(token))
                return false;
            sampler.Accept(token);
        }
        return sampler.IsComplete;
    }

    // The call written the way the compact grammar writes it: FormatCall with compact JSON (no space after the name's colon).
    private static string CompactCall(ToolCallFormat format) =>
        format.FormatCall("get_weather", Arguments).Replace("\"name\": ", "\"name\":", StringComparison.Ordinal)
            .Replace($"\"{format.ArgumentsProperty}\": ", $"\"{format.ArgumentsProperty}\":", StringComparison.Ordinal)
            .Replace("\", \"", "\",\"", StringComparison.Ordinal);

    public static TheoryData<string> Formats => [.. ToolCallFormat.BuiltIn.Select(f => f.Name)];

    [Theory]
    [MemberData(nameof(Formats))]
    public void Required_forces_the_familys_own_call_and_the_parser_reads_it(string name)
    {
        var format = ToolCallFormat.Find(name)!;
        var grammar = ToolGrammar.For(format, new ChatOptions { ToolMode = ChatToolMode.RequireAny }, [_weather])!;
        var call = CompactCall(format);

        Assert.False(grammar.IsLazy);
        Assert.True(Accepts(grammar, call), $"{name}: {call}\n{grammar.Gbnf}");
        Assert.False(Accepts(grammar, "Sure. " + call));
        Assert.False(Accepts(grammar, call.Replace("get_weather", "get_time", StringComparison.Ordinal)));
        var parsed = format.CreateParser(["get_weather"]).ParseAll(call);
        Assert.Equal("get_weather", Assert.IsType<FunctionCallContent>(Assert.Single(parsed)).Name);
    }

    [Theory]
    [MemberData(nameof(Formats))]
    public void Auto_leaves_text_free_until_the_familys_opener_then_forces_the_call(string name)
    {
        var format = ToolCallFormat.Find(name)!;
        var grammar = ToolGrammar.For(format, new ChatOptions { ToolMode = ChatToolMode.Auto }, [_weather]);
        if (format == ToolCallFormat.Llama3Json)
        {
            Assert.Null(grammar); // calls start with bare JSON: nothing to wait for
            return;
        }

        Assert.NotNull(grammar);
        Assert.Equal([format.CallStart], grammar.TriggerWords);
        var call = CompactCall(format);
        Assert.True(Accepts(grammar, "Let me check, free text { [ ( here. " + call), $"{name}: {call}\n{grammar.Gbnf}");
        Assert.False(Accepts(grammar, "Let me check. " + format.CallStart + "{\"oops\": 1}"));
    }
}
