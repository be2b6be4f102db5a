using System.Diagnostics;
using System.Text;
using System.Text.Json;
using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Grammar;
using AgentHost.Llama.Models;
using Xunit.Abstractions;

namespace AgentHost.Llama.Tests.Grammar;

/// <summary>
/// Grammars and JSON schemas as an attacker writes them: huge, deep, unsatisfiable, cancelled, loaded
/// from several threads at once. Each is refused with one clear error naming the limit or the place,
/// or compiles and decodes within a stated memory bound; nothing hangs, crashes or loses stderr.
/// </summary>
[Collection(Stories260KCollection.Name)]
public sealed class GrammarLimitsTests(Stories260KFixture fixture, ITestOutputHelper log)
{
    private const long MemoryBound = 300L * 1024 * 1024;
    private static readonly TimeSpan _hangGuard = TimeSpan.FromSeconds(120);
    private static readonly JsonDocumentOptions _deep = new() { MaxDepth = 100_000 };

    [Theory]
    [InlineData(1000)]
    [InlineData(3000)]
    public async Task Many_optional_properties_compile_linearly_and_decode_within_a_memory_bound(int count)
    {
        var properties = new StringBuilder();
        for (var i = 0; i < count; i++)
            properties.Append(i == 0 ? "" : ", ").Append($"\"property_{i}\": {{\"type\": \"boolean\"}}");
        using var schema = JsonDocument.Parse($$"""{"type": "object", "properties": {{{properties}}}, "additionalProperties": false}""");

        using var watch = MemoryWatch.Start();
        var result = await Task.Run(() =>
        {
            var grammar = JsonSchemaGrammar.FromSchema(schema.RootElement, new JsonGrammarOptions { MaxWhitespace = 0 });
            var generated = fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once", MaxTokens = 20, Grammar = grammar }).GetAwaiter().GetResult();
            return (grammar.Gbnf.Length, generated);
        }).WaitAsync(_hangGuard);
        var growth = watch.Stop();

        log.WriteLine($"{count} optional properties: {result.Length:N0} GBNF characters, peak growth {growth / 1e6:F0} MB, text {result.generated.Text}");
        Assert.InRange(result.Length, 1, count * 400L);   // linear in the properties (spelt out, each way to skip some took n²/2 members)
        Assert.InRange(growth, 0, MemoryBound);
        Assert.StartsWith("{\"property_", result.generated.Text);
    }

    [Fact]
    public async Task Deeply_nested_gbnf_is_refused_before_llama_cpp_parses_it()
    {
        var nested = new GrammarConstraint { Gbnf = "root ::= " + new string('(', 20_000) + "\"a\"" + new string(')', 20_000) };

        var error = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(fixture.Model, nested));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("GrammarLimits.MaxNesting", error.Message);
        var atTheLimit = new GrammarConstraint { Gbnf = "root ::= " + new string('(', GrammarLimits.MaxNesting) + "\" a\"" + new string(')', GrammarLimits.MaxNesting) };
        var result = await fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once", MaxTokens = 10, Grammar = atTheLimit });
        Assert.Equal(" a", result.Text);
    }

    public static TheoryData<string, string> OversizedGrammars => new()
    {
        { "root ::= \"" + new string('a', 1100) + "\"{1999}", "GrammarLimits.MaxElements" },
        { string.Concat(Enumerable.Range(0, 30).Select(i => $"r{i} ::= \"a\"{{0,1999}}\n")) + "root ::= r0", "GrammarLimits.MaxRules" },
        { "root ::= \"a\"{0,2000}", "multiplied by the new repetition exceeds sane defaults" },
        { "root ::= r0\n" + string.Concat(Enumerable.Range(0, 30).Select(i => $"r{i} ::= r{i + 1} \"a\" | r{i + 1} \"b\"\n")) + "r30 ::= \"a\"", "GrammarLimits.MaxParseStacks" },
        { "root ::= r0\n" + string.Concat(Enumerable.Range(0, 30).Select(i => $"r{i} ::= (r{i + 1} | \"c\")? \"a\" | (r{i + 1}) \"b\"\n")) + "r30 ::= \"a\"", "GrammarLimits.MaxParseStacks" },
        { "root ::= (x){1000}\nx ::= \"b\"", "multiplied by the new repetition exceeds sane defaults" },
        { "root ::= (\"a\"{0,3}){500}", "multiplied by the new repetition exceeds sane defaults" },
        { "root ::= \"" + new string('a', GrammarLimits.MaxGrammarLength) + "\"", "GrammarLimits.MaxGrammarLength" },
        { "root ::= \"a\"{2001}", "number of repetitions exceeds sane defaults" },
        { "root ::= \"a\"{99999999999999999999}", "number of repetitions exceeds sane defaults" },
        { "root ::= \"a\"{3,2}", "minimum above its maximum" },
        { "root ::= \"a\0b\"", "NUL character" },
        { "root ::= \"a", "unexpected end of input" },
        { "root ::= [a-", "unexpected end of input" },
        { "root ::= \"\\q\"", "unknown escape" },
        { "root ::= \"\\x4\"", "expecting 2 hex chars" },
        { "root ::= * \"a\"", "expecting preceding item to *" },
        { "root ::= \"a\"{,3}", "expecting an int" },
        { "root ::= \"a\" ) ", "expecting newline or end" },
        { "root := \"a\"", "expecting ::=" },
    };

    [Theory]
    [MemberData(nameof(OversizedGrammars))]
    public void Gbnf_beyond_a_limit_or_malformed_is_one_clear_error(string gbnf, string expected)
    {
        var error = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(fixture.Model, new GrammarConstraint { Gbnf = gbnf }));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(expected, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Theory]
    [InlineData("root ::= \"a\"{1999}")]
    [InlineData("root ::= (x){999}\nx ::= \"b\"")]
    [InlineData("root ::= x (x){1000}\nx ::= \"b\"")]
    [InlineData("root ::= (\"a\"{0,3}){499}")]
    [InlineData("root ::= (\"a\"{0,3}) \"b\"{1000}")]
    [InlineData("root ::= <[1]> | !<[2]> \"a\"")]
    public void Grammars_just_below_llama_cpps_thresholds_load(string gbnf)
    {
        using var sampler = GrammarSampler.Create(fixture.Model, new GrammarConstraint { Gbnf = gbnf });
    }

    [Fact]
    public void A_deep_schema_is_refused_naming_the_depth_limit()
    {
        // Deep through $ref hops (shallow JSON), and deep as JSON.
        var defs = string.Join(", ", Enumerable.Range(0, 100).Select(i => $"\"d{i}\": {{\"type\": \"array\", \"items\": {{\"$ref\": \"#/$defs/d{i + 1}\"}}}}"));
        using var viaRefs = JsonDocument.Parse("{\"$defs\": {" + defs + ", \"d100\": {\"type\": \"integer\"}}, \"$ref\": \"#/$defs/d0\"}");
        using var viaJson = JsonDocument.Parse(string.Concat(Enumerable.Repeat("{\"items\": ", 500)) + "{}" + new string('}', 500), _deep);

        foreach (var schema in new[] { viaRefs.RootElement, viaJson.RootElement })
        {
            var error = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(schema));
            Assert.Contains("GrammarLimits.MaxSchemaDepth", error.Message);
        }
    }

    [Fact]
    public void Huge_enums_and_tool_sets_are_refused_naming_a_limit()
    {
        using var enumSchema = JsonDocument.Parse("{\"enum\": [" + string.Join(", ", Enumerable.Range(0, 20_000)) + "]}");
        using var toolSchema = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {" + string.Join(", ", Enumerable.Range(0, 60).Select(i => $"\"p{i}\": {{\"type\": \"string\"}}")) + "}}");
        var tools = Enumerable.Range(0, 200).Select(i => new ToolGrammarFunction($"tool{i}", toolSchema.RootElement)).ToList();

        var huge = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(enumSchema.RootElement));
        var many = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.ToolCalls(tools, "<tool_call>", "</tool_call>"));

        Assert.Contains("GrammarLimits.MaxSchemaNodes", huge.Message);
        Assert.Matches(@"GrammarLimits\.(MaxSchemaNodes|MaxGrammarLength)", many.Message);
        var fewer = JsonSchemaGrammar.ToolCalls(tools.Take(20).ToList(), "<tool_call>", "</tool_call>");
        using var sampler = GrammarSampler.Create(fixture.Model, fewer);
    }

    [Theory]
    [InlineData("""{"type": "string", "maxLength": 1e9}""", "maxLength above 2000")]
    [InlineData("""{"type": "array", "minItems": 10000000000}""", "minItems above 2000")]
    [InlineData("""{"type": "integer", "minimum": 1e300}""", "minimum beyond 1e17")]
    public void Huge_repetition_counts_and_bounds_build_no_huge_rule(string schema, string expected)
    {
        using var document = JsonDocument.Parse(schema);
        var error = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(document.RootElement));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Compilation_honours_cancellation()
    {
        using var schema = JsonDocument.Parse("""{"type": "object", "properties": {"a": {"type": "string"}}}""");
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var gbnf = new GrammarConstraint { Gbnf = "root ::= \"a\"" };

        Assert.ThrowsAny<OperationCanceledException>(() => JsonSchemaGrammar.FromSchema(schema.RootElement, null, cancelled.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => JsonSchemaGrammar.ToolCalls([new ToolGrammarFunction("f", schema.RootElement)], "", "", cancellationToken: cancelled.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => gbnf.Validate(cancelled.Token));
        Assert.ThrowsAny<OperationCanceledException>(() => GrammarSampler.Create(fixture.Model, gbnf, cancelled.Token));
    }

    [Fact]
    public async Task Cancelling_a_large_compilation_stops_it()
    {
        var properties = string.Join(", ", Enumerable.Range(0, 3000).Select(i => $"\"p{i}\": {{\"type\": \"string\", \"maxLength\": {i % 100}}}"));
        using var schema = JsonDocument.Parse("{\"type\": \"object\", \"properties\": {" + properties + "}}");
        using var source = new CancellationTokenSource();

        var compile = Task.Run(() =>
        {
            for (var i = 0; ; i++)   // compiles again and again until cancelled
            {
                JsonSchemaGrammar.FromSchema(schema.RootElement, null, source.Token);
                if (i == 0)
                    source.CancelAfter(TimeSpan.FromMilliseconds(50));
            }
        });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => compile.WaitAsync(_hangGuard));
    }

    public static TheoryData<string, string> Unsatisfiable => new()
    {
        { """{"type": "string", "minLength": 10, "maxLength": 2}""", "at #: maxLength is below minLength" },
        { """{"type": "object", "required": ["a"], "additionalProperties": false}""", "at #: required property 'a' is not allowed" },
        { """{"type": "object", "properties": {"b": {"type": "string"}}, "required": ["a"], "additionalProperties": false}""", "required property 'a' is not allowed" },
        { """{"type": "object", "properties": {"a": false}, "required": ["a"]}""", "required property 'a' has the schema false" },
        { """{"type": "object", "properties": {"n": {"type": "array", "minItems": 4, "maxItems": 1}}}""", "at #/properties/n: maxItems is below minItems" },
        { """{"type": "object", "minProperties": 3, "maxProperties": 1}""", "maxProperties is below minProperties" },
        { """{"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"], "maxProperties": 1}""", "2 properties are required but maxProperties is 1" },
        { """{"type": "number", "minimum": 5, "maximum": 1}""", "no number lies between the bounds" },
        { """{"type": "number", "exclusiveMinimum": 1, "maximum": 1}""", "no number lies between the bounds" },
        { """{"type": "integer", "exclusiveMinimum": 1, "exclusiveMaximum": 2}""", "no integer lies between the bounds" },
        { """{"type": "integer", "minimum": 1.2, "maximum": 1.8}""", "no integer lies between the bounds" },
        { """{"type": "string", "enum": [1, 2, null]}""", "no enum value is of the schema's type" },
        { """{"type": "integer", "const": "seven"}""", "const is not of the schema's type" },
        { """{"type": "integer", "const": 1.5}""", "const is not of the schema's type" },
        { """{"const": 3, "enum": [1, 2]}""", "const is not among the enum values" },
        { """{"type": []}""", "type is an empty list" },
        { """{"anyOf": [false, false]}""", "every anyOf option is false" },
        { """{"type": "array", "items": false, "minItems": 1}""", "items is false but minItems is 1" },
        { """{"type": "string", "minLength": 1e10, "maxLength": 1e9}""", "maxLength is below minLength" },
        { """{"type": "array", "items": {"type": "object", "properties": {"deep": {"type": "string", "minLength": 3, "maxLength": 1}}}}""", "at #/items/properties/deep:" },
    };

    [Theory]
    [MemberData(nameof(Unsatisfiable))]
    public void Unsatisfiable_schemas_are_refused_naming_the_place(string schema, string expected)
    {
        using var document = JsonDocument.Parse(schema);

        var error = Assert.Throws<AgentHostException>(() => JsonSchemaGrammar.FromSchema(document.RootElement, new JsonGrammarOptions { IgnoreUnsupported = true }));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith("The JSON schema cannot be satisfied at #", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task Satisfiable_parts_of_contradictory_schemas_are_kept_and_followed()
    {
        // Enum values of another type are dropped, a false optional property may not appear.
        using var schema = JsonDocument.Parse("""{"type": "object", "properties": {"colour": {"type": "string", "enum": ["red", 7, "blue", null]}, "never": false}, "required": ["colour"], "additionalProperties": false}""");

        var grammar = JsonSchemaGrammar.FromSchema(schema.RootElement);
        var result = await fixture.Session.GenerateAsync(new GreedyStrategy(), new GenerationRequest { Prompt = "Once", MaxTokens = 40, Grammar = grammar });

        Assert.DoesNotContain("never", grammar.Gbnf);
        using var output = JsonDocument.Parse(result.Text);
        Assert.Contains(output.RootElement.GetProperty("colour").GetString(), new[] { "red", "blue" });
        Assert.Single(output.RootElement.EnumerateObject());
    }

    [Fact]
    public async Task Grammars_load_concurrently_on_two_models_and_stderr_stays_intact()
    {
        var stderrBefore = StandardErrorTarget();
        using var other = LlamaModel.Load("TinyStories-656K", TestModels.TinyStories656K, Stories260KFixture.Settings);
        var models = new[] { fixture.Model, other };
        var valid = new GrammarConstraint { Gbnf = "root ::= \"a\" [a-z]{1,5}" };
        var leftRecursive = new GrammarConstraint { Gbnf = "root ::= root \"a\"" };

        var loads = Enumerable.Range(0, 8).Select(thread => Task.Run(() =>
        {
            for (var i = 0; i < 25; i++)
            {
                var model = models[(thread + i) % 2];
                using (GrammarSampler.Create(model, valid))
                {
                }
                var error = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(model, leftRecursive));
                Assert.StartsWith("llama.cpp cannot use the grammar", error.Message);
            }
        }));
        await Task.WhenAll(loads).WaitAsync(_hangGuard);

        Assert.Equal(stderrBefore, StandardErrorTarget());
    }

    // Where file descriptor 2 points (Linux); a redirect left behind would show a temporary file here.
    private static string StandardErrorTarget()
        => OperatingSystem.IsLinux() ? new FileInfo("/proc/self/fd/2").LinkTarget ?? "" : "";

    /// <summary>Samples the process's working set while an operation runs; reports the peak growth.</summary>
    private sealed class MemoryWatch : IDisposable
    {
        private readonly long _before;
        private readonly Timer _timer;
        private long _peak;

        private MemoryWatch()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            _before = Current();
            _peak = _before;
            _timer = new Timer(_ => Sample(), null, 0, 10);
        }

        public static MemoryWatch Start() => new();

        public long Stop()
        {
            _timer.Dispose();
            Sample();
            return Interlocked.Read(ref _peak) - _before;
        }

        public void Dispose() => _timer.Dispose();

        private void Sample()
        {
            var now = Current();
            long seen;
            while (now > (seen = Interlocked.Read(ref _peak)) && Interlocked.CompareExchange(ref _peak, now, seen) != seen)
            {
            }
        }

        private static long Current()
        {
            using var process = Process.GetCurrentProcess();
            return process.WorkingSet64;
        }
    }
}
