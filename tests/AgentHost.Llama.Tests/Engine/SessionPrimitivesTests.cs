using AgentHost.Llama.Engine;

namespace AgentHost.Llama.Tests.Engine;

[Collection(Stories260KCollection.Name)]
public sealed class SessionPrimitivesTests(Stories260KFixture fixture)
{
    private Task<T> Run<T>(Func<InferenceSession, T> work) => fixture.Session.RunAsync(work);

    [Fact]
    public async Task A_token_shared_by_two_sequences_sees_the_same_prefix_as_a_copied_sequence()
    {
        var (shared, copied) = await Run(s =>
        {
            var prompt = s.Model.Tokenize("Once upon a time", addBos: true);
            s.Reset();
            s.Prefill(prompt, 0);
            s.CopySequence(0, 1);
            s.VerifyKvCache();

            // One decode: the same next token appended to sequence 0 and (separately) to sequence 1.
            s.ClearBatch();
            var i0 = s.AddToBatch(11, prompt.Length, 0, logits: true);
            var i1 = s.AddToBatch(11, prompt.Length, 1, logits: true);
            s.Decode();
            var a = s.GetLogits(i0).ToArray();
            var b = s.GetLogits(i1).ToArray();
            s.VerifyKvCache();
            return (a, b);
        });

        Assert.Equal(shared.Length, copied.Length);
        for (var i = 0; i < shared.Length; i++)
            Assert.Equal(shared[i], copied[i], 3);
    }

    [Fact]
    public async Task Remove_keep_and_copy_update_n_past_and_match_the_cache()
    {
        var pasts = await Run(s =>
        {
            var prompt = s.Model.Tokenize("Once upon a time there was a dog", addBos: true);
            s.Reset();
            s.Prefill(prompt, 0);
            s.CopySequence(0, 2);
            var afterCopy = s.GetPast(2);
            s.RemoveSequence(2, 4);
            var afterTruncate = s.GetPast(2);
            s.VerifyKvCache();
            s.KeepSequence(0);
            var afterKeep = s.GetPast(2);
            s.VerifyKvCache();
            return (prompt.Length, afterCopy, afterTruncate, afterKeep, s.GetPast(0));
        });

        Assert.Equal(pasts.Length, pasts.afterCopy);
        Assert.Equal(4, pasts.afterTruncate);
        Assert.Equal(0, pasts.afterKeep);
        Assert.Equal(pasts.Length, pasts.Item5);
    }

    [Fact]
    public async Task A_token_in_a_sequence_set_is_visible_to_every_sequence_of_the_set()
    {
        var past = await Run(s =>
        {
            var prompt = s.Model.Tokenize("Once upon a time", addBos: true);
            s.Reset();
            s.ClearBatch();
            for (var i = 0; i < prompt.Length; i++)
                s.AddToBatch(prompt[i], i, [0, 1, 2], logits: i == prompt.Length - 1);
            s.Decode();
            s.VerifyKvCache();
            return new[] { s.GetPast(0), s.GetPast(1), s.GetPast(2), s.GetPast(3) };
        });

        Assert.Equal([5, 5, 5, 0], past);
    }

    [Fact]
    public async Task Using_a_session_off_the_scheduler_thread_is_refused()
    {
        var error = Assert.Throws<InvalidOperationException>(() => fixture.Session.Decode());
        Assert.Contains("scheduler", error.Message);
        // The session still works on its thread.
        Assert.True(await Run(s => { s.VerifyKvCache(); return true; }));
    }

    [Fact]
    public async Task Sequence_ids_outside_the_context_are_rejected()
    {
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Run(s => s.AddToBatch(1, 0, fixture.Session.SequenceCount, logits: false)));
        await Run(s => { s.ClearBatch(); return true; });
    }
}

public sealed class HiddenStateTests
{
    [Fact]
    public async Task With_hidden_states_on_a_decode_returns_both_logits_and_the_final_hidden_state()
    {
        var settings = Stories260KFixture.Settings;
        settings.HiddenStates = true;
        using var model = Llama.Models.LlamaModel.Load("stories260k", TestModels.Stories260K, settings);
        using var session = await model.CreateSessionAsync();

        var (logits, hidden, greedy) = await session.RunAsync(s =>
        {
            var prompt = s.Model.Tokenize("Once upon a time", addBos: true);
            s.Reset();
            var index = s.Prefill(prompt, 0);
            return (s.GetLogits(index).ToArray(), s.GetHiddenState(index).ToArray(), Llama.Decoding.TokenSampler.ArgMax(s.GetLogits(index)));
        });

        Assert.Equal(model.Vocabulary.Count, logits.Length);
        Assert.Equal(64, hidden.Length); // stories260K: d = 64
        Assert.Contains(hidden, h => h != 0);
        Assert.Equal(",", model.Detokenize([greedy]));
    }
}
