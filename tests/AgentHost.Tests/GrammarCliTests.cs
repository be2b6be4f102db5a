using System.Text.Json;

namespace AgentHost.Tests;

/// <summary><c>generate --grammar</c> and <c>--json-schema</c>, run as a real process on stories260K.</summary>
public sealed class GrammarCliTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("agenthost-grammar-").FullName;

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_temp, name);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Generate_follows_a_gbnf_file_and_ends_when_it_is_complete()
    {
        var grammar = Write("word.gbnf", "root ::= \" [\" [a-z]{2,6} \"]\"\n");

        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--grammar", grammar, "--json"]);

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StdOut);
        Assert.Matches("^ \\[[a-z]{2,6}\\]$", json.RootElement.GetProperty("text").GetString());
        Assert.Equal("end_of_generation", json.RootElement.GetProperty("stop_reason").GetString());
    }

    [Fact]
    public async Task Generate_with_a_json_schema_writes_json_of_that_shape()
    {
        var schema = Write("schema.json", """{"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}, "required": ["n", "ok"]}""");

        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once upon a time", "--json-schema", schema, "--strategy", "sample", "--seed", "3", "--json"]);

        Assert.Equal(0, result.ExitCode);
        using var json = JsonDocument.Parse(result.StdOut);
        using var value = JsonDocument.Parse(json.RootElement.GetProperty("text").GetString()!);
        Assert.Equal(JsonValueKind.Number, value.RootElement.GetProperty("n").ValueKind);
        Assert.Contains(value.RootElement.GetProperty("ok").ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
    }

    [Theory]
    [InlineData("bad.gbnf", "root ::= (\"a\"\n", "--grammar", "expecting ')'")]
    [InlineData("schema.json", """{"type": "string", "pattern": "a+"}""", "--json-schema", "pattern at #")]
    [InlineData("schema.json", "{not json", "--json-schema", "is not valid JSON")]
    public async Task Bad_grammar_input_is_one_clear_error(string file, string content, string option, string expected)
    {
        var path = Write(file, content);

        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", option, path]);

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.Equal("", result.StdOut);
    }

    [Theory]
    [InlineData("deep.gbnf", "--grammar", "GrammarLimits.MaxNesting")]
    [InlineData("repeated.gbnf", "--grammar", "number of repetitions exceeds sane defaults")]
    [InlineData("deep.json", "--json-schema", "GrammarLimits.MaxSchemaDepth")]
    [InlineData("enum.json", "--json-schema", "GrammarLimits.MaxSchemaNodes")]
    [InlineData("unsatisfiable.json", "--json-schema", "The JSON schema cannot be satisfied at #/properties/name: maxLength is below minLength")]
    public async Task Grammar_input_beyond_a_limit_or_unsatisfiable_is_exit_2_and_one_line_naming_it(string file, string option, string expected)
    {
        var content = file switch
        {
            "deep.gbnf" => "root ::= " + new string('(', 20_000) + "\"a\"" + new string(')', 20_000) + "\n",
            "repeated.gbnf" => "root ::= \"a\"{1000000000}\n",
            "deep.json" => "{\"$defs\": {" + string.Join(", ", Enumerable.Range(0, 100).Select(i => $"\"d{i}\": {{\"type\": \"array\", \"items\": {{\"$ref\": \"#/$defs/d{i + 1}\"}}}}")) + ", \"d100\": {}}, \"$ref\": \"#/$defs/d0\"}",
            "enum.json" => "{\"enum\": [" + string.Join(", ", Enumerable.Range(0, 20_000)) + "]}",
            _ => """{"type": "object", "properties": {"name": {"type": "string", "minLength": 10, "maxLength": 2}}}""",
        };
        var path = Write(file, content);

        var result = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", option, path]).WaitAsync(TimeSpan.FromMinutes(2));

        Assert.Equal(2, result.ExitCode);
        var line = Assert.Single(result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(expected, line);
        Assert.Equal("", result.StdOut);
    }

    [Fact]
    public async Task A_missing_grammar_file_and_a_strategy_without_grammar_support_are_usage_errors()
    {
        var missing = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", "--grammar", Path.Combine(_temp, "none.gbnf")]);
        var grammar = Write("a.gbnf", "root ::= \"a\"\n");
        var recycling = await AgentHostProcess.RunAsync(["generate", "--prompt", "Once", "--grammar", grammar, "--strategy", "recycling"]);

        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("Cannot read the grammar file", missing.StdErr);
        Assert.Equal(2, recycling.ExitCode);
        Assert.Contains("recycling strategy cannot follow a grammar", recycling.StdErr);
    }
}
