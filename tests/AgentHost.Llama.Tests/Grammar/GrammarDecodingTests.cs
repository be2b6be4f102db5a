using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Grammar;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests.Grammar;

/// <summary>The engine side of grammars: forcing, completion and EOG, lazy triggers, bad grammars, refusals.</summary>
[Collection(Stories260KCollection.Name)]
public sealed class GrammarDecodingTests(Stories260KFixture fixture)
{
    private const string Prompt = "Once upon a time";
    private readonly GreedyStrategy _greedy = new();

    private Task<GenerationResult> Generate(IDecodingStrategy strategy, GrammarConstraint? grammar, int maxTokens = 60, SamplingOptions? sampling = null)
        => fixture.Session.GenerateAsync(strategy, new GenerationRequest { Prompt = Prompt, MaxTokens = maxTokens, Grammar = grammar, Sampling = sampling });

    private static GrammarConstraint Gbnf(string text, params string[] triggers) => new() { Gbnf = text, TriggerWords = triggers };

    [Fact]
    public async Task A_grammar_forces_text_the_model_would_not_write_and_then_ends_generation()
    {
        var result = await Generate(_greedy, Gbnf("root ::= \" there was a purple dog\""));

        Assert.Equal(" there was a purple dog", result.Text);
        Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
        Assert.Equal(1, result.Stats.Extra["grammar_complete"]);
    }

    [Fact]
    public async Task A_grammar_that_allows_what_the_model_wants_leaves_greedy_unchanged()
    {
        var free = await Generate(_greedy, null, maxTokens: 80);
        var constrained = await Generate(_greedy, Gbnf("root ::= [^\\x00]*"), maxTokens: 80);

        Assert.Equal(free.Tokens, constrained.Tokens);
    }

    [Fact]
    public async Task Sampling_draws_only_tokens_the_grammar_allows()
    {
        var grammar = Gbnf("root ::= (\" \" [a-z]{1,6}){3,5} \".\"");
        for (ulong seed = 1; seed <= 5; seed++)
        {
            var result = await Generate(new SamplingStrategy(), grammar, sampling: new SamplingOptions { Temperature = 1.5f, TopK = 0, TopP = 1, MinP = 0, Seed = seed });

            Assert.Matches("^( [a-z]{1,6}){3,5}\\.$", result.Text);
            Assert.Equal(StopReason.EndOfGeneration, result.StopReason);
        }
    }

    [Fact]
    public async Task Output_cut_by_max_tokens_reports_the_grammar_incomplete()
    {
        var result = await Generate(_greedy, Gbnf("root ::= \"[\" [a-z ]* \"]\""), maxTokens: 5);

        Assert.Equal(StopReason.MaxTokens, result.StopReason);
        Assert.Equal(0, result.Stats.Extra["grammar_complete"]);
        Assert.StartsWith("[", result.Text);
    }

    [Fact]
    public async Task A_lazy_grammar_constrains_only_after_its_trigger_word()
    {
        var free = await Generate(_greedy, null);
        const string Trigger = " named";
        var cut = free.Text.IndexOf(Trigger, StringComparison.Ordinal) + Trigger.Length;
        Assert.True(cut > Trigger.Length, free.Text);

        var lazy = await Generate(_greedy, Gbnf("root ::= \" \\\"\" [A-Z] [a-z]{1,6} \"\\\"\"", Trigger));

        Assert.Equal(free.Text[..cut], lazy.Text[..cut]);
        Assert.Matches("^ \"[A-Z][a-z]{1,6}\"$", lazy.Text[cut..]);
        Assert.Equal(StopReason.EndOfGeneration, lazy.StopReason);
        Assert.Equal(1, lazy.Stats.Extra["grammar_triggered"]);
    }

    [Fact]
    public async Task A_trigger_token_switches_the_grammar_on_after_that_token()
    {
        var free = await Generate(_greedy, null);
        var named = fixture.Model.Tokenize("girl named", addBos: false)[^1];
        Assert.Equal(" named", fixture.Model.Detokenize([named]));
        var cut = free.Tokens.ToList().IndexOf(named) + 1;

        var lazy = await Generate(_greedy, new GrammarConstraint { Gbnf = "root ::= \" Bob.\"", TriggerTokens = [named] });

        Assert.Equal(free.Tokens.Take(cut), lazy.Tokens.Take(cut));
        Assert.EndsWith("girl named Bob.", lazy.Text);
        Assert.Equal(StopReason.EndOfGeneration, lazy.StopReason);
    }

    [Fact]
    public async Task A_lazy_grammar_whose_trigger_never_comes_changes_nothing()
    {
        var free = await Generate(_greedy, null);
        var lazy = await Generate(_greedy, Gbnf("root ::= \"{\" \"}\"", "<tool_call>"));

        Assert.Equal(free.Tokens, lazy.Tokens);
        Assert.Equal(0, lazy.Stats.Extra["grammar_triggered"]);
        Assert.Equal(StopReason.MaxTokens, lazy.StopReason);
    }

    [Fact]
    public async Task The_token_completing_a_trigger_word_ends_with_it_so_the_grammar_starts_right_after()
    {
        // Greedy writes " named" " Lily"; " Lily" would run past the trigger "named ", so the token " " is chosen.
        var lazy = await Generate(_greedy, Gbnf("root ::= \"Linda.\"", "named "));

        Assert.EndsWith("girl named Linda.", lazy.Text);
        var pieces = lazy.Tokens.Select(t => fixture.Model.Detokenize([t])).ToList();
        Assert.Equal(" ", pieces[pieces.IndexOf(" named") + 1]);
        Assert.Equal(StopReason.EndOfGeneration, lazy.StopReason);
        var sampled = await Generate(new SamplingStrategy(), Gbnf("root ::= \"nda.\"", " a"), sampling: new SamplingOptions { Temperature = 1.0f, Seed = 3 });
        Assert.EndsWith(" anda.", sampled.Text);
    }

    [Theory]
    [InlineData("root ::= (\"a\"", "root")]
    [InlineData("root ::= undefined-rule", "root")]
    [InlineData("start ::= \"a\"", "root")]
    [InlineData("root ::= root \"a\"", "root")]
    [InlineData("main ::= \"a\" [", "main")]
    public async Task A_grammar_llama_cpp_cannot_use_is_a_clear_error_not_a_crash(string gbnf, string root)
    {
        var grammar = new GrammarConstraint { Gbnf = gbnf, Root = root };

        var direct = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(fixture.Model, grammar));
        var viaRequest = await Assert.ThrowsAsync<AgentHostException>(() => Generate(_greedy, grammar));

        Assert.Equal(ErrorKind.InvalidArgument, direct.Kind);
        Assert.StartsWith("llama.cpp cannot use the grammar", direct.Message);
        Assert.Equal(direct.Message, viaRequest.Message);
        var after = await Generate(_greedy, null, maxTokens: 5);
        Assert.Equal(5, after.Tokens.Count);
    }

    [Fact]
    public void The_parse_error_says_why()
    {
        var syntax = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(fixture.Model, Gbnf("root ::= (\"a\"")));
        var undefined = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(fixture.Model, Gbnf("root ::= \"a\" | foo")));
        var noRoot = Assert.Throws<AgentHostException>(() => GrammarSampler.Create(fixture.Model, Gbnf("start ::= \"a\"")));

        Assert.Contains("expecting ')'", syntax.Message);
        Assert.Contains("Undefined rule identifier 'foo'", undefined.Message);
        Assert.Contains("grammar does not contain a 'root' symbol", noRoot.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("bad root!")]
    public void Invalid_constraint_values_are_refused_up_front(string root)
    {
        var error = Assert.Throws<AgentHostException>(() => new GrammarConstraint { Gbnf = root.Length == 0 ? " " : "root ::= \"a\"", Root = root.Length == 0 ? "root" : root }.Validate());
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
    }

    [Theory]
    [InlineData("recycling")]
    [InlineData("lookup")]
    [InlineData("cautious")]
    public async Task Strategies_that_cannot_follow_a_grammar_refuse_it(string name)
    {
        var strategy = DecodingStrategies.Create(name);

        var error = await Assert.ThrowsAsync<AgentHostException>(() => Generate(strategy, Gbnf("root ::= \"a\"")));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Contains($"The {name} strategy cannot follow a grammar", error.Message);
    }

    [Fact]
    public async Task Accepting_a_token_the_grammar_rejects_throws_instead_of_aborting()
    {
        var x = fixture.Model.Tokenize("x", addBos: false)[^1];
        var y = fixture.Model.Tokenize("y", addBos: false)[^1];
        await fixture.Session.RunAsync(session =>
        {
            using var grammar = GrammarSampler.Create(session.Model, Gbnf("root ::= \"x\""));
            Assert.False(grammar.Allows(y));
            Assert.Throws<InvalidOperationException>(() => grammar.Accept(y));
            Assert.True(grammar.Allows(x));
            grammar.Accept(x);
            Assert.True(grammar.IsComplete);
            return 0;
        });
    }

    [Fact]
    public void The_sampler_never_draws_a_token_masked_to_minus_infinity()
    {
        var sampler = new TokenSampler(new SamplingOptions { TopK = 0, TopP = 1, MinP = 0, Temperature = 1 }, 6);
        // Their float probabilities sum to 0.99999999, just below the largest target.
        float[] logits = [0.4f, float.NegativeInfinity, 1.8f, float.NegativeInfinity, -2.6f, float.NegativeInfinity];
        sampler.Process(logits);

        var chosen = sampler.Candidates[sampler.Choose(Math.BitDecrement(1.0))];

        Assert.True(chosen.Probability > 0);
        Assert.False(float.IsNegativeInfinity(logits[chosen.Id]));
    }

    [Fact]
    public async Task A_grammar_the_vocabulary_cannot_spell_is_a_clear_error()
    {
        // TinyStories-656K has no byte tokens and no '{': nothing can start this grammar.
        using var model = LlamaModel.Load("656k", TestModels.TinyStories656K, Stories260KFixture.Settings);
        using var session = await model.CreateSessionAsync();

        var error = await Assert.ThrowsAsync<AgentHostException>(() =>
            session.GenerateAsync(_greedy, new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 10, Grammar = Gbnf("root ::= \"{\" [a-z]* \"}\"") }));

        Assert.Contains("allows no token", error.Message);
    }
}
