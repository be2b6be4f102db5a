using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>The numeric argument constraint on stories260K's real vocabulary.</summary>
[Collection(Stories260KCollection.Name)]
public sealed class ToolTokensArgumentConstraintTests(Stories260KFixture fixture)
{
    private const string Mixed = """{"type":"object","properties":{"count":{"type":"integer"},"factor":{"type":"number"}}}""";

    private IArgumentConstraint Create(string schema) => NumericArgumentConstraints.Instance.Create(new ToolDefinition("t", schema, (_, j, _) => Task.FromResult(j)), fixture.Model);

    private int Token(string text)
    {
        var vocabulary = fixture.Model.Vocabulary;
        for (var t = 0; t < vocabulary.Count; t++)
        {
            if (vocabulary.GetBytes(t).SequenceEqual(System.Text.Encoding.UTF8.GetBytes(text)))
                return t;
        }
        throw new InvalidOperationException($"No token '{text}'.");
    }

    private bool Allowed(IArgumentConstraint constraint, string text)
    {
        var logits = new float[fixture.Model.Vocabulary.Count];
        constraint.Mask(logits);
        return !float.IsNegativeInfinity(logits[Token(text)]);
    }

    private void Feed(IArgumentConstraint constraint, params string[] pieces)
    {
        foreach (var piece in pieces)
            constraint.Accept(Token(piece));
    }

    [Fact]
    public void Positional_numbers_close_into_the_schemas_JSON_object()
    {
        var constraint = Create(Mixed);
        Assert.True(Allowed(constraint, "3"));
        Assert.True(Allowed(constraint, "-"));
        Assert.True(Allowed(constraint, " "));
        Assert.False(Allowed(constraint, ")"));
        Assert.False(Allowed(constraint, "a"));

        Feed(constraint, "-", "1", "2");
        Assert.False(Allowed(constraint, ".")); // count is an integer
        Assert.False(Allowed(constraint, ")")); // factor is still missing
        Assert.True(Allowed(constraint, ","));
        Feed(constraint, ",", " ", "2", ".", "5");
        Assert.False(Allowed(constraint, ","));
        Assert.False(constraint.IsComplete);
        Feed(constraint, ")");

        Assert.True(constraint.IsComplete);
        Assert.Equal("""{"count":-12,"factor":2.5}""", constraint.ArgumentsJson);
    }

    [Fact]
    public void A_tool_without_arguments_only_closes()
    {
        var constraint = Create("""{"type":"object","properties":{}}""");
        Assert.True(Allowed(constraint, ")"));
        Assert.False(Allowed(constraint, "3"));
        Feed(constraint, ")");
        Assert.Equal("{}", constraint.ArgumentsJson);
    }

    [Fact]
    public void Numbers_are_bounded_and_spaces_do_not_repeat()
    {
        var constraint = Create(Mixed);
        Feed(constraint, " ");
        Assert.False(Allowed(constraint, " "));
        for (var i = 0; i < 9; i++)
            Feed(constraint, "9");
        Assert.False(Allowed(constraint, "9"));
        Assert.Throws<InvalidOperationException>(() => constraint.ArgumentsJson);
    }

    [Fact]
    public async Task Tools_with_other_arguments_get_the_json_schema_grammar_and_the_model_closes_a_valid_call()
    {
        const string Schema = """{"type":"object","properties":{"name":{"type":"string","enum":["Tom","Lily"]},"times":{"type":"integer"}},"required":["name","times"]}""";
        var tool = new ToolDefinition("greet", Schema, (_, j, _) => Task.FromResult(j));
        Assert.False(NumericArgumentConstraints.TakesOnlyNumbers(tool));
        Assert.True(NumericArgumentConstraints.TakesOnlyNumbers(new ToolDefinition("t", Mixed, (_, j, _) => Task.FromResult(j))));

        // Greedy argument mode on the real model, as the strategy runs it: mask, choose, accept, decode.
        var constraint = JsonSchemaArgumentConstraints.Default.Create(tool, fixture.Model);
        var arguments = await fixture.Session.RunAsync(session =>
        {
            session.Reset();
            var index = session.Prefill(fixture.Model.Tokenize("Tom said hello greet(", addBos: true), 0);
            var logits = new float[fixture.Model.Vocabulary.Count];
            for (var step = 0; step < 60 && !constraint.IsComplete; step++)
            {
                session.GetLogits(index).CopyTo(logits);
                constraint.Mask(logits);
                var token = Llama.Decoding.TokenSampler.ArgMax(logits);
                constraint.Accept(token);
                session.ClearBatch();
                index = session.AddToBatch(token, session.GetPast(0), 0, logits: true);
                session.Decode();
            }
            session.Reset();
            return constraint.IsComplete ? constraint.ArgumentsJson : null;
        });

        Assert.NotNull(arguments);
        using var json = System.Text.Json.JsonDocument.Parse(arguments);
        Assert.Contains(json.RootElement.GetProperty("name").GetString(), new[] { "Tom", "Lily" });
        Assert.Equal(System.Text.Json.JsonValueKind.Number, json.RootElement.GetProperty("times").ValueKind);
    }
}
