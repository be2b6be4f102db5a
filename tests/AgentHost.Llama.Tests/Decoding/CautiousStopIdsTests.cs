using AgentHost.Llama.Decoding;
using AgentHost.Llama.Decoding.Strategies;
using AgentHost.Llama.Models;

namespace AgentHost.Llama.Tests.Decoding;

/// <summary>
/// The running-text stop rule of cautious decoding on both real test models: each stop id spells a punctuation
/// character (or "▁c"), never whitespace; trials end at those ids, and at the request's stop strings.
/// </summary>
[Collection(CautiousCollection.Name)]
public sealed class CautiousStopIdsTests(CautiousFixture fixture)
{
    public static TheoryData<string> Models => [TestModels.Stories260K, TestModels.TinyStories656K];

    [Theory]
    [MemberData(nameof(Models))]
    public async Task Running_text_stop_ids_spell_each_character_exactly_and_never_whitespace(string path)
    {
        using var model = LlamaModel.Load("m", path, CautiousFixture.Settings);
        using var session = await model.CreateSessionAsync();
        var ids = await session.RunAsync(_ => CautiousStrategy.PunctuationIds(model));

        Assert.NotEmpty(ids);
        Assert.Equal(ids.Count, ids.Distinct().Count());
        foreach (var id in ids)
        {
            var text = model.Detokenize([id]);
            Assert.False(string.IsNullOrWhiteSpace(text) && text != "\n", $"stop id {id} is whitespace-only: '{text}'");
            Assert.Contains(CautiousStrategy.PunctuationCharacters, c => text == c || text == " " + c);
        }
        // Every character the vocabulary can encode has a stop id that spells exactly it; "\n" is the newline token.
        foreach (var c in CautiousStrategy.PunctuationCharacters.Where(c => model.Vocabulary.Guard.CanEncode(System.Text.Rune.GetRuneAt(c, 0))))
            Assert.Contains(ids, id => model.Detokenize([id]) == c);
        Assert.Contains(ids, id => model.Detokenize([id]) == "\n");
        // The token that follows a word in running text is the one chosen for "." (not the bare space piece).
        var period = Assert.Single(model.TokenizeAfterWord("."));
        Assert.Contains(period, ids);
        Assert.Equal(".", model.Detokenize([period]));
    }

    [Fact]
    public async Task Trials_end_at_a_punctuation_id_well_before_their_limit()
    {
        var model = fixture.Model;
        var stopIds = await fixture.Session.RunAsync(_ => CautiousStrategy.PunctuationIds(model));
        var strategy = new CautiousStrategy { RecordTrials = true };
        int shortOnStop = 0, trials = 0;
        for (ulong seed = 1; seed <= 4; seed++)
        {
            var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 80, Sampling = new SamplingOptions { Temperature = 1.0f, Seed = seed } };
            var result = await fixture.Session.GenerateAsync(strategy, request);
            foreach (var step in Assert.IsAssignableFrom<IReadOnlyList<CautiousStep>>(result.Details))
            {
                foreach (var trial in step.TrialTokens!)
                {
                    trials++;
                    for (var k = 0; k < trial.Length - 1; k++)
                        Assert.DoesNotContain(trial[k], stopIds);
                    if (stopIds.Contains(trial[^1]) && trial.Length < step.LengthLimit)
                        shortOnStop++;
                }
            }
        }
        // With the old rule's bare-space id every trial of stories260K ran to its limit; now most end on punctuation.
        Assert.True(trials > 0, "no branching step");
        Assert.True(shortOnStop * 2 > trials, $"only {shortOnStop} of {trials} trials ended on a punctuation id before their limit");
    }

    [Fact]
    public async Task A_trial_ends_at_the_token_that_completes_a_stop_string()
    {
        var model = fixture.Model;
        var stopIds = await fixture.Session.RunAsync(_ => CautiousStrategy.PunctuationIds(model));
        var strategy = new CautiousStrategy { RecordTrials = true };
        const string stop = "he";
        var endedOnStopString = 0;
        for (ulong seed = 1; seed <= 6; seed++)
        {
            var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 80, Stop = [stop], Sampling = new SamplingOptions { Temperature = 1.5f, Seed = seed } };
            var result = await fixture.Session.GenerateAsync(strategy, request);
            Assert.DoesNotContain(stop, result.Text);
            foreach (var step in Assert.IsAssignableFrom<IReadOnlyList<CautiousStep>>(result.Details))
            {
                foreach (var trial in step.TrialTokens!)
                {
                    Assert.DoesNotContain(stop, model.Detokenize(trial[..^1]));
                    if (model.Detokenize(trial).Contains(stop, StringComparison.Ordinal))
                    {
                        endedOnStopString++;
                        Assert.DoesNotContain(trial[^1], stopIds);
                    }
                }
            }
        }
        Assert.True(endedOnStopString > 0, "no trial ended on the stop string");
    }
}
