using System.Text.Json;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Grammar;
using Json.Schema;
using Xunit.Abstractions;

namespace AgentHost.Llama.Tests.Grammar;

/// <summary>
/// JSON schema -> GBNF: every grammar is accepted by llama.cpp, and what stories260K writes under it
/// (greedy and seeded samples) is JSON valid against the schema. The story model knows no JSON: the
/// grammar alone makes the output valid; the bounds in <see cref="Bounded"/> make every value end.
/// </summary>
[Collection(Stories260KCollection.Name)]
public sealed class GrammarSchemaTests(Stories260KFixture fixture, ITestOutputHelper log)
{
    internal static readonly JsonGrammarOptions Bounded = new() { MaxWhitespace = 1, MaxStringLength = 8, MaxArrayItems = 3, MaxDigits = 4 };

    public static TheoryData<string, string> Schemas => new()
    {
        { "string", """{"type": "string"}""" },
        { "integer", """{"type": "integer"}""" },
        { "number", """{"type": "number"}""" },
        { "boolean", """{"type": "boolean"}""" },
        { "null", """{"type": "null"}""" },
        { "true schema", "true" },
        { "empty schema (any value)", "{}" },
        { "string enum", """{"type": "string", "enum": ["red", "green", "blue"]}""" },
        { "enum needing escapes", """{"enum": ["a b", "c\"d", "e\\f", "ünï"]}""" },
        { "enum of mixed values", """{"enum": [1, "two", null, true, {"x": [1, 2]}]}""" },
        { "const", """{"const": "fixed"}""" },
        { "string length", """{"type": "string", "minLength": 3, "maxLength": 5}""" },
        { "formats", """{"type": "object", "properties": {"day": {"type": "string", "format": "date"}, "at": {"type": "string", "format": "time"}, "when": {"type": "string", "format": "date-time"}, "id": {"type": "string", "format": "uuid"}}, "required": ["day", "at", "when", "id"]}""" },
        { "integer range", """{"type": "integer", "minimum": 1, "maximum": 12}""" },
        { "negative integer range", """{"type": "integer", "minimum": -40, "maximum": -3}""" },
        { "exclusive integer bounds", """{"type": "integer", "exclusiveMinimum": -5, "exclusiveMaximum": 250}""" },
        { "integer at least", """{"type": "integer", "minimum": 100}""" },
        { "integer at most", """{"type": "integer", "maximum": 7}""" },
        { "type union", """{"type": ["string", "null"]}""" },
        { "object all required", """{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a", "b"]}""" },
        { "object all optional", """{"type": "object", "properties": {"x": {"type": "boolean"}, "y": {"type": "null"}, "z": {"type": "integer"}}}""" },
        { "object mixed", """{"type": "object", "properties": {"o1": {"type": "integer"}, "r1": {"type": "string"}, "o2": {"type": "boolean"}, "r2": {"type": "number"}}, "required": ["r1", "r2"], "additionalProperties": false}""" },
        { "object required without schema", """{"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a", "b"]}""" },
        { "nested objects", """{"type": "object", "properties": {"user": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"]}}, "required": ["user"]}""" },
        { "free-form object", """{"type": "object"}""" },
        { "map", """{"type": "object", "additionalProperties": {"type": "integer"}}""" },
        { "array", """{"type": "array", "items": {"type": "integer"}}""" },
        { "array bounds", """{"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 2, "maxItems": 3}""" },
        { "anyOf", """{"anyOf": [{"type": "integer"}, {"type": "object", "properties": {"k": {"type": "boolean"}}, "required": ["k"]}]}""" },
        { "oneOf", """{"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]}""" },
        { "$ref to $defs", """{"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}}, "type": "object", "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"}}, "required": ["from", "to"]}""" },
        { "allOf of one $ref to draft-07 definitions", """{"$schema": "http://json-schema.org/draft-07/schema#", "definitions": {"color": {"enum": ["r", "g"]}}, "type": "object", "properties": {"c": {"allOf": [{"$ref": "#/definitions/color"}], "description": "a colour"}}, "required": ["c"]}""" },
        { "allOf merging objects", """{"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]}""" },
        { "recursion via $defs", """{"$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["value"]}}, "$ref": "#/$defs/node"}""" },
        { "recursion via root", """{"type": "object", "properties": {"name": {"type": "string"}, "next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}}, "required": ["name"]}""" },
        { "tool parameters", """{"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer", "title": "Days"}}, "required": ["city"], "$schema": "https://json-schema.org/draft/2020-12/schema"}""" },
    };

    [Theory]
    [MemberData(nameof(Schemas))]
    public async Task Output_under_the_schema_grammar_validates_against_the_schema(string name, string schemaJson)
    {
        using var document = JsonDocument.Parse(schemaJson);
        var grammar = JsonSchemaGrammar.FromSchema(document.RootElement, Bounded);
        var validator = JsonSchema.FromText(schemaJson);

        using (GrammarSampler.Create(fixture.Model, grammar)) { } // llama.cpp accepts it

        var runs = new List<GenerationResult> { await Generate(new GreedyStrategy(), grammar, null) };
        for (ulong seed = 1; seed <= 3; seed++)
            runs.Add(await Generate(new SamplingStrategy(), grammar, new SamplingOptions { Temperature = 1.0f, Seed = seed }));

        foreach (var run in runs)
        {
            log.WriteLine($"{run.Strategy} ({run.Tokens.Count} tokens): {run.Text}");
            Assert.True(run.StopReason == StopReason.EndOfGeneration, $"{name}: stopped on {run.StopReason} after {run.Tokens.Count} tokens: {run.Text}");
            Assert.Equal(1, run.Stats.Extra["grammar_complete"]);
            using var output = JsonDocument.Parse(run.Text);
            var evaluation = validator.Evaluate(output.RootElement, new EvaluationOptions { RequireFormatValidation = true });
            Assert.True(evaluation.IsValid, $"{name}: {run.Text} is not valid against {schemaJson}");
        }
    }

    [Fact]
    public void Unsupported_keywords_are_all_reported_with_their_place()
    {
        const string Schema = """{"type": "object", "properties": {"code": {"type": "string", "pattern": "^[a-z]+$", "format": "email"}, "n": {"type": "number", "minimum": 1}}, "not": {"required": ["x"]}}""";
        using var document = JsonDocument.Parse(Schema);

        var error = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(document.RootElement));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("pattern at #/properties/code", error.Message);
        Assert.Contains("format 'email' (supported: date, time, date-time, uuid) at #/properties/code", error.Message);
        Assert.Contains("minimum of a number (bounds are supported on integers) at #/properties/n", error.Message);
        Assert.Contains("not at #", error.Message);
    }

    [Fact]
    public void Keywords_json_schema_does_not_define_are_ignored_like_validators_do()
    {
        // Semantic Kernel writes the function description as "condition"; vendors add x- keywords.
        const string Schema = """{"type": "object", "condition": "Adds", "x-origin": {"a": 1}, "properties": {"a": {"type": "number", "x-unit": "m"}}, "required": ["a"]}""";
        using var document = JsonDocument.Parse(Schema);

        var grammar = JsonSchemaGrammar.FromSchema(document.RootElement, Bounded, out var ignored);

        Assert.Empty(ignored);
        Assert.Contains("\"\\\"a\\\"\"", grammar.Gbnf);   // the property name, as a GBNF literal
    }

    [Fact]
    public async Task Ignoring_unsupported_keywords_is_explicit_and_lists_them()
    {
        const string Schema = """{"type": "object", "properties": {"n": {"type": "number", "multipleOf": 0.5}, "s": {"type": "string", "pattern": "a+"}}, "required": ["n", "s"]}""";
        using var document = JsonDocument.Parse(Schema);

        var grammar = JsonSchemaGrammar.FromSchema(document.RootElement, Bounded with { IgnoreUnsupported = true }, out var ignored);

        Assert.Equal(["multipleOf at #/properties/n", "pattern at #/properties/s"], ignored);
        var result = await Generate(new GreedyStrategy(), grammar, null);
        using var output = JsonDocument.Parse(result.Text);
        Assert.Equal(JsonValueKind.Number, output.RootElement.GetProperty("n").ValueKind);
        Assert.Equal(JsonValueKind.String, output.RootElement.GetProperty("s").ValueKind);
    }

    [Theory]
    [InlineData("""{"$ref": "#/$defs/missing"}""", "does not point into the schema")]
    [InlineData("""{"$ref": "https://example.com/schema.json"}""", "only references within the schema")]
    [InlineData("""{"type": "strng"}""", "Unknown type 'strng'")]
    [InlineData("""{"type": "array", "minItems": 3, "maxItems": 2}""", "maxItems is below minItems")]
    [InlineData("""{"enum": []}""", "non-empty array")]
    [InlineData("false", "a schema no value matches")]
    [InlineData("""{"type": "string", "maxLength": 5000}""", "maxLength above 2000 (llama.cpp's repetition limit) at #")]
    [InlineData("42", "not an object or boolean")]
    public void Bad_schemas_are_clear_errors(string schema, string expected)
    {
        using var document = JsonDocument.Parse(schema);
        var error = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(document.RootElement));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("""{"$defs": {"a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"}}, "required": ["b"]}, "b": {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}, "required": ["a"]}}, "$ref": "#/$defs/a"}""",
        "#/$defs/a requires #/$defs/b (at #/$defs/a/properties/b), which requires #/$defs/a (at #/$defs/b/properties/a)")]
    [InlineData("""{"$defs": {"self": {"type": "object", "properties": {"next": {"$ref": "#/$defs/self"}}, "required": ["next"]}}, "type": "object", "properties": {"x": {"$ref": "#/$defs/self"}}}""",
        "#/$defs/self requires #/$defs/self (at #/$defs/self/properties/next)")]
    [InlineData("""{"type": "object", "properties": {"more": {"type": "array", "minItems": 1, "items": {"$ref": "#"}}}, "required": ["more"]}""",
        "# requires # (at #/properties/more/items)")]
    [InlineData("""{"$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"anyOf": [{"$ref": "#/$defs/a"}, {"$ref": "#/$defs/b"}]}}, "$ref": "#/$defs/a"}""",
        "requires #/$defs/")]
    public void Mutually_required_references_are_refused_naming_the_cycle(string schema, string expected)
    {
        using var document = JsonDocument.Parse(schema);
        var error = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(document.RootElement));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("refer to each other without end", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Theory]
    [InlineData("""{"$defs": {"a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"}}, "required": ["b"]}, "b": {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}}}, "$ref": "#/$defs/a"}""")]
    [InlineData("""{"$defs": {"a": {"type": "object", "properties": {"b": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "required": ["b"]}}, "$ref": "#/$defs/a"}""")]
    [InlineData("""{"$defs": {"a": {"type": "object", "properties": {"b": {"type": "array", "items": {"$ref": "#/$defs/a"}}}, "required": ["b"]}}, "$ref": "#/$defs/a"}""")]
    public void Recursion_that_can_end_is_accepted(string schema)
    {
        using var document = JsonDocument.Parse(schema);
        Assert.Contains("::=", JsonSchemaGrammar.FromSchema(document.RootElement).Gbnf);
    }

    [Fact]
    public void A_recursive_ref_becomes_one_self_referencing_rule()
    {
        using var document = JsonDocument.Parse("""{"$defs": {"list": {"type": "object", "properties": {"next": {"$ref": "#/$defs/list"}}}}, "$ref": "#/$defs/list"}""");

        var gbnf = JsonSchemaGrammar.FromSchema(document.RootElement).Gbnf;

        var rule = Assert.Single(gbnf.Split('\n'), line => line.StartsWith("schema-list ::= ", StringComparison.Ordinal));
        Assert.Contains("\"\\\"next\\\"\" ws \":\" ws schema-list ws", rule);
    }

    [Fact]
    public async Task A_forced_tool_call_names_one_of_the_functions_with_valid_arguments()
    {
        const string AddSchema = """{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}""";
        const string GreetSchema = """{"type": "object", "properties": {"name": {"type": "string"}, "formal": {"type": "boolean"}}, "required": ["name"]}""";
        using var add = JsonDocument.Parse(AddSchema);
        using var greet = JsonDocument.Parse(GreetSchema);
        var grammar = JsonSchemaGrammar.ToolCalls([new("add", add.RootElement), new("greet", greet.RootElement)], "<tool_call>", "</tool_call>", Bounded);
        var schemas = new Dictionary<string, JsonSchema> { ["add"] = JsonSchema.FromText(AddSchema), ["greet"] = JsonSchema.FromText(GreetSchema) };

        var names = new HashSet<string>();
        for (ulong seed = 1; seed <= 4; seed++)
        {
            var result = await Generate(new SamplingStrategy(), grammar, new SamplingOptions { Temperature = 1.0f, Seed = seed });

            Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
            Assert.StartsWith("<tool_call>", result.Text);
            Assert.EndsWith("</tool_call>", result.Text);
            using var call = JsonDocument.Parse(result.Text["<tool_call>".Length..^"</tool_call>".Length]);
            var name = call.RootElement.GetProperty("name").GetString()!;
            names.Add(name);
            Assert.True(schemas[name].Evaluate(call.RootElement.GetProperty("arguments")).IsValid, result.Text);
        }
        Assert.NotEmpty(names);
    }

    [Fact]
    public async Task A_lazy_tool_call_grammar_lets_text_run_until_the_prefix_then_forces_a_call()
    {
        // The story model never writes <tool_call>, so its own words stand in for the call marker here.
        using var parameters = JsonDocument.Parse("""{"type": "object", "properties": {"name": {"type": "string", "maxLength": 6}}, "required": ["name"]}""");
        var grammar = JsonSchemaGrammar.ToolCalls([new("greet", parameters.RootElement)], " named", "", Bounded, lazy: true);

        var result = await Generate(new GreedyStrategy(), grammar, null);

        Assert.Equal([" named"], grammar.TriggerWords);
        Assert.StartsWith(", there was a little girl named", result.Text);
        using var call = JsonDocument.Parse(result.Text[(result.Text.IndexOf(" named", StringComparison.Ordinal) + 6)..]);
        Assert.Equal("greet", call.RootElement.GetProperty("name").GetString());
        Assert.Equal(JsonValueKind.String, call.RootElement.GetProperty("arguments").GetProperty("name").ValueKind);
        Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
    }

    [Theory]
    [InlineData(-45, 345)]
    [InlineData(7, 1203)]
    [InlineData(-1203, -98)]
    public async Task An_integer_range_grammar_accepts_exactly_the_numbers_in_range(long min, long max)
    {
        using var schema = JsonDocument.Parse($$"""{"type": "integer", "minimum": {{min}}, "maximum": {{max}}}""");
        var grammar = JsonSchemaGrammar.FromSchema(schema.RootElement, Bounded);
        var vocabulary = fixture.Model.Vocabulary;
        var charToken = new Dictionary<char, int>();
        for (var token = 0; token < vocabulary.Count; token++)
        {
            var bytes = vocabulary.GetBytes(token);
            if (bytes.Length == 1 && (char)bytes[0] is (>= '0' and <= '9') or '-')
                charToken[(char)bytes[0]] = token;
        }

        var wrong = await fixture.Session.RunAsync(session =>
        {
            var mistakes = new List<string>();
            for (var value = min - 150; value <= max + 150; value++)
            {
                // The numeral, and the same with a leading zero (never valid JSON).
                var numeral = value.ToString(System.Globalization.CultureInfo.InvariantCulture);
                foreach (var (text, expected) in new[] { (numeral, value >= min && value <= max), ("0" + Math.Abs(value), false) })
                {
                    using var sampler = GrammarSampler.Create(session.Model, grammar);
                    var accepted = true;
                    foreach (var c in text)
                    {
                        if (!sampler.Allows(charToken[c]))
                        {
                            accepted = false;
                            break;
                        }
                        sampler.Accept(charToken[c]);
                    }
                    accepted &= sampler.IsComplete;
                    if (accepted != expected)
                        mistakes.Add($"{text}: {(accepted ? "accepted" : "rejected")}");
                }
            }
            return mistakes;
        });

        Assert.Empty(wrong);
    }

    [Fact]
    public void Builder_keeps_rule_names_unique_and_valid()
    {
        var builder = new GbnfBuilder();
        var a = builder.AddRule("my rule!", "\"a\"");
        var b = builder.AddRule("my rule!", "\"b\"");
        var s = builder.AddRule("string", "\"c\"");

        Assert.Equal("my-rule", a);
        Assert.Equal("my-rule-2", b);
        Assert.Equal("string-2", s);
        Assert.Equal("\"say \\\"hi\\\"\\n\\\\\"", GbnfBuilder.Literal("say \"hi\"\n\\"));
        Assert.Equal("root ::= my-rule my-rule-2 string-2\nmy-rule ::= \"a\"\nmy-rule-2 ::= \"b\"\nstring-2 ::= \"c\"\n", builder.Build("my-rule my-rule-2 string-2"));
    }

    private Task<GenerationResult> Generate(IDecodingStrategy strategy, GrammarConstraint grammar, SamplingOptions? sampling)
        => fixture.Session.GenerateAsync(strategy, new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 400, Grammar = grammar, Sampling = sampling });
}
