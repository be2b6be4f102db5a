using AgentHost.Llama.Decoding.Speculative;

namespace AgentHost.Llama.Tests;

/// <summary>
/// The speculative pieces that need no model, against scripted verifier choices: the walk, the drafts
/// recycling builds from its matrix and records, the draft length the costs allow, and what is learned.
/// The real-model tests in <see cref="SpeculativeDecodingTests"/> are what prove the whole.
/// </summary>
public sealed class SpeculativeWalkTests
{
    private const int Vocabulary = 16;

    // root 1 -> 2 -> 4, root 1 -> 3
    private static DraftTree SmallTree()
    {
        var tree = new DraftTree();
        tree.Reset(1);
        var two = tree.Add(0, 2);
        tree.Add(0, 3);
        tree.Add(two, 4);
        tree.Complete();
        return tree;
    }

    [Fact]
    public void The_walk_emits_the_verifiers_choices_and_descends_while_a_child_holds_them()
    {
        var tree = SmallTree();
        var verifier = new ScriptedVerifier(new() { [0] = 2, [1] = 4, [3] = 9 });

        var last = tree.Walk(ref verifier, out var bonus, out var stopped);

        Assert.Equal(3, last);                       // root -> 2 -> 4
        Assert.Equal([2, 4, 9], verifier.Emitted);   // two accepted drafts and the bonus token
        Assert.Equal(9, bonus);
        Assert.False(stopped);
    }

    [Fact]
    public void The_walk_takes_the_branch_the_verifier_chooses_and_stops_where_generation_stops()
    {
        var tree = SmallTree();
        var branch = new ScriptedVerifier(new() { [0] = 3, [2] = 7 });
        Assert.Equal(2, tree.Walk(ref branch, out var bonus, out _));
        Assert.Equal([3, 7], branch.Emitted);
        Assert.Equal(7, bonus);

        var stopping = new ScriptedVerifier(new() { [0] = 2, [1] = 4 }) { StopAfter = 1 };
        Assert.Equal(0, tree.Walk(ref stopping, out _, out var stopped));
        Assert.True(stopped);
        Assert.Equal([2], stopping.Emitted);         // a stop ends the walk even where a child matches
    }

    // root 1 -> 2 (node 1) -> 5 (node 3), root 1 -> 2 (node 2) -> 6 (node 4) -> 8 (node 5): siblings repeat token 2.
    private static DraftTree RepeatedSiblings(bool longest)
    {
        var tree = new DraftTree();
        tree.Reset(1);
        var first = tree.Add(0, 2);
        var second = tree.Add(0, 2);
        tree.Add(first, 5);
        var six = tree.Add(second, 6);
        tree.Add(six, 8);
        tree.Complete();
        tree.LongestAcceptedPath = longest;
        return tree;
    }

    [Fact]
    public void Where_siblings_repeat_a_token_the_papers_walk_takes_the_longest_accepted_path_and_the_first_match_walk_does_not()
    {
        // The verifier chooses 2 at the root, then 7 after the first 2 (no child holds it) but 6 after the second.
        var choices = new Dictionary<int, int> { [0] = 2, [1] = 7, [2] = 6, [3] = 0, [4] = 8, [5] = 9 };

        var firstMatch = new ScriptedVerifier(choices);
        Assert.Equal(1, RepeatedSiblings(longest: false).Walk(ref firstMatch, out var bonus, out _));
        Assert.Equal([2, 7], firstMatch.Emitted);
        Assert.Equal(7, bonus);

        var tree = RepeatedSiblings(longest: true);
        var paper = new ScriptedVerifier(choices);
        Assert.Equal(5, tree.Walk(ref paper, out bonus, out var stopped));
        Assert.Equal([2, 6, 8, 9], paper.Emitted);   // every emitted token is still the verifier's choice at its parent
        Assert.Equal(9, bonus);
        Assert.False(stopped);
        Assert.Equal(2, tree.LongestPathGain);       // depth 3 against depth 1
        // Reset hands the next step a first-match walk unless the drafter asks again.
        tree.Reset(1);
        Assert.False(tree.LongestAcceptedPath);
    }

    [Fact]
    public void The_papers_walk_takes_the_first_path_in_leaf_order_on_a_tie_and_stops_where_generation_stops()
    {
        // Both 2s are followed by their own child's token (5 and 6, each at depth 2; 8 is not chosen after 6): the path
        // of the first leaf (node 3) wins, as the paper's argmax over paths returns the first maximum.
        var tie = new Dictionary<int, int> { [0] = 2, [1] = 5, [2] = 6, [3] = 1, [4] = 3, [5] = 4 };
        var verifier = new ScriptedVerifier(tie);
        Assert.Equal(3, RepeatedSiblings(longest: true).Walk(ref verifier, out _, out _));
        Assert.Equal([2, 5, 1], verifier.Emitted);

        var stopping = new ScriptedVerifier(new() { [0] = 2, [1] = 7, [2] = 6, [3] = 0, [4] = 8, [5] = 9 }) { StopAfter = 2 };
        Assert.Equal(2, RepeatedSiblings(longest: true).Walk(ref stopping, out _, out var stopped));
        Assert.True(stopped);
        Assert.Equal([2, 6], stopping.Emitted);
    }

    [Fact]
    public void The_planner_drafts_the_length_with_the_most_tokens_per_cost_and_nothing_when_no_draft_pays()
    {
        var prior = new VerificationCosts();        // C(b) = 1 + 0.1 (b - 1) until measured
        Assert.Equal(2, DraftPlanner.BestLength([0.9, 0.8, 0.1], prior, out var expected, out var cost));
        Assert.Equal(2.7, expected, 9);
        Assert.Equal(1.2, cost, 9);

        var expensive = Costs((1, 10), (2, 25), (3, 30), (4, 35));
        Assert.Equal(0, DraftPlanner.BestLength([0.9, 0.8, 0.1], expensive, out expected, out cost));
        Assert.Equal(1.0, expected);
        Assert.Equal(1.0, cost);
    }

    [Fact]
    public void Beside_other_requests_a_draft_must_raise_the_batch_tokens_per_cost_so_speculation_turns_down_under_load()
    {
        // A weight-bound start (C(2) barely more than C(1)) that turns compute-bound: every token beyond 8 costs as much as a plain step's share.
        var times = Enumerable.Range(1, 40).Select(b => (b, b <= 8 ? 10.0 + 0.2 * (b - 1) : 11.4 + 1.3 * (b - 8))).ToArray();
        var costs = Costs(times);
        double[] acceptance = [0.9, 0.8, 0.01];

        // Alone: the two likely tokens pay (2.7 tokens for 10.4 / 10 ms of a plain step; the third adds too little).
        Assert.Equal(2, DraftPlanner.BestLength(acceptance, costs, out var expected, out var cost, load: 0));
        Assert.Equal(2.7, expected, 9);
        Assert.Equal(1.04, cost, 9);
        // Beside 30 tokens of other requests the batch is compute-bound: a step of 31 tokens takes 41.3 ms, and drafting two
        // more (1.7 tokens expected) for 2.6 ms more lowers the batch's tokens per ms (32.7 / 43.9 < 31 / 41.3): no draft.
        Assert.Equal(0, DraftPlanner.BestLength(acceptance, costs, out expected, out cost, load: 30));
        Assert.Equal(1.0, expected);
        Assert.Equal(1.0, cost);
    }

    [Fact]
    public void Costs_are_measured_ratios_once_sampled_and_an_unmeasured_size_costs_no_less_than_a_measured_smaller_one()
    {
        var costs = new VerificationCosts();
        Assert.True(costs.PlainStepDue);
        Assert.Equal(VerificationCosts.Prior(4), costs.Cost(4));

        costs = Costs((1, 10), (2, 16));
        Assert.Equal(1.6, costs.Cost(2), 9);
        Assert.Equal(1.6, costs.Cost(5), 9);         // not measured: at least C(2)
        Assert.Equal(VerificationCosts.Prior(9), costs.Cost(9), 9);
        Assert.False(costs.PlainStepDue);
        for (var i = 0; i < VerificationCosts.PlainStepEvery; i++)
            costs.Record(2, 16);
        Assert.True(costs.PlainStepDue);             // C(1) is refreshed now and then
    }

    [Fact]
    public void Recycling_drafts_a_reliable_chain_as_deep_as_it_pays_and_stops_at_an_unreliable_row()
    {
        var state = ChainState(unreliable: 4);
        var tree = Draft(state, new VerificationCosts(), out var expected);

        // Rows 1, 2, 3 were always right at rank 0; row 4 never: the chain 2, 3, 4 pays, 5 does not.
        Assert.Equal([2, 3, 4], Tokens(tree));
        Assert.Equal([0, 1, 2], Parents(tree));
        Assert.Equal(expected, state.Expected(tree), 9);
        Assert.True(expected > 3.5);

        // Where a two-token verification costs little but three cost three plain steps, one draft token pays best.
        Assert.Equal([2], Tokens(Draft(state, Costs((1, 10), (2, 12), (3, 30)), out _)));
        // Where nothing pays, a plain step.
        Assert.Empty(Tokens(Draft(state, Costs((1, 10), (2, 25), (3, 40)), out expected)));
        Assert.Equal(1.0, expected);
    }

    [Fact]
    public void Recycling_branches_where_a_row_splits_between_two_candidates_unless_sequences_run_out()
    {
        var state = new RecyclingState(Vocabulary);
        state.Matrix.SetRow(1, Row(1));
        for (var i = 0; i < 40; i++)
            state.RecordRank(1, i % 2); // after 1: candidate 0 and candidate 1, half the time each

        var tree = Draft(state, new VerificationCosts(), out _);
        Assert.Equal([2, 3], Tokens(tree));
        Assert.Equal([0, 0], Parents(tree));
        Assert.Equal(2, tree.LeafCount);

        var narrow = new DraftTree();
        narrow.Reset(1);
        state.DraftBest(narrow, maxNodes: 15, maxLeaves: 1, maxDepth: 8, new VerificationCosts(), out _, out _);
        narrow.Complete();
        Assert.Equal([2], Tokens(narrow));
    }

    [Fact]
    public void Observing_a_node_scores_its_row_against_the_emitted_token_and_recycles_the_top_candidates()
    {
        var state = new RecyclingState(Vocabulary);
        var logits = new float[Vocabulary];
        for (var t = 0; t < Vocabulary; t++)
            logits[t] = t; // argmax 15, then 14, 13 ...

        Assert.Equal(0, state.Acceptance(7, 0));     // a row never written drafts nothing
        Assert.Equal(15, state.Observe(7, logits, chosen: -1));
        Assert.Equal([15, 14, 13, 12, 11, 10, 9, 8], state.Matrix.Row(7).ToArray());

        var before = state.Acceptance(7, 2);
        state.Observe(7, logits, chosen: 13);        // the walk emitted candidate 2 of the old row
        Assert.True(state.Acceptance(7, 2) > before);
    }

    [Fact]
    public void Recycling_drafts_a_reliable_prompt_lookup_chain_and_shares_the_nodes_the_matrix_also_proposes()
    {
        // No row written: only the lookup chain (5, 6, 7), accepted every time so far, can draft.
        var state = new RecyclingState(Vocabulary);
        for (var i = 0; i < 20; i++)
            state.Lookup.Record(ngram: 2, drafted: 3, accepted: 3);
        var tree = Draft(state, new VerificationCosts(), out var expected, lookup: [5, 6, 7], lookupNgram: 2);
        Assert.Equal([5, 6, 7], Tokens(tree));
        Assert.Equal([0, 1, 2], Parents(tree));
        Assert.Equal([1, 2, 3], Enumerable.Range(1, 3).Select(state.LookupDepth).ToArray());
        Assert.True(expected > 3.5);

        // Rows 1..4 reliable at rank 0 (1 -> 2 -> 3 ...): a chain starting with 2 shares the matrix's node rather than adding a twin.
        var both = ChainState(unreliable: -1);
        tree = Draft(both, new VerificationCosts(), out _, lookup: [2, 3], lookupNgram: 2);
        Assert.Single(Enumerable.Range(1, tree.Count - 1), n => tree.Parent(n) == 0 && tree.Token(n) == 2);
        Assert.Equal(1, both.LookupDepth(1));
        Assert.Equal(2, tree.Token(1));
    }

    [Fact]
    public void Prompt_lookup_finds_the_latest_earlier_occurrence_of_the_longest_suffix()
    {
        int[] history = [1, 2, 3, 9, 2, 3, 8, 7, 2, 3];
        Assert.Equal(2, LookupRecord.FindMatch(history, maxNgram: 3, out var start));
        Assert.Equal(4, start);  // "2 3" at 4 (followed by 8), not at 1
        Assert.Equal(0, LookupRecord.FindMatch([4, 5, 6], maxNgram: 3, out _));
    }

    [Fact]
    public void Lookup_records_acceptance_per_match_length_and_depth()
    {
        var record = new LookupRecord();
        Assert.Equal(0.5, record.Acceptance(2, 1));

        record.Record(ngram: 2, drafted: 3, accepted: 1); // depth 1 accepted, depth 2 rejected, depth 3 never reached
        Assert.Equal(2.0 / 3, record.Acceptance(2, 1), 9);
        Assert.Equal(1.0 / 3, record.Acceptance(2, 2), 9);
        Assert.Equal(0.5, record.Acceptance(2, 3));
        Assert.Equal(0.5, record.Acceptance(3, 1));  // other match lengths keep their own record

        var chain = new double[3];
        record.Chain(2, chain);
        Assert.Equal(2.0 / 3, chain[0], 9);
        Assert.Equal(2.0 / 9, chain[1], 9);
        Assert.Equal(1.0 / 9, chain[2], 9);
    }

    private static int[] Row(int token) => Enumerable.Range(1, 8).Select(c => (token + c) % Vocabulary).ToArray();

    // Rows 1..4 written (candidate c of row t is t + c + 1); rows 1..3 always right at rank 0, row `unreliable` never.
    private static RecyclingState ChainState(int unreliable)
    {
        var state = new RecyclingState(Vocabulary);
        for (var t = 1; t <= 4; t++)
        {
            state.Matrix.SetRow(t, Row(t));
            for (var i = 0; i < 40; i++)
                state.RecordRank(t, t == unreliable ? -1 : 0);
        }
        return state;
    }

    private static DraftTree Draft(RecyclingState state, VerificationCosts costs, out double expected, int[]? lookup = null, int lookupNgram = 0)
    {
        var tree = new DraftTree();
        tree.Reset(1);
        state.DraftBest(tree, maxNodes: 15, maxLeaves: 16, maxDepth: 8, costs, out expected, out _, lookup, lookupNgram);
        tree.Complete();
        return tree;
    }

    private static VerificationCosts Costs(params (int Batch, double Milliseconds)[] times)
    {
        var costs = new VerificationCosts();
        foreach (var (batch, milliseconds) in times)
        {
            for (var i = 0; i < VerificationCosts.MinSamples; i++)
                costs.Record(batch, milliseconds);
        }
        return costs;
    }

    private static int[] Tokens(DraftTree tree) => Enumerable.Range(1, tree.Count - 1).Select(tree.Token).ToArray();

    private static int[] Parents(DraftTree tree) => Enumerable.Range(1, tree.Count - 1).Select(tree.Parent).ToArray();

    /// <summary>Verifier choices scripted by node; records what was emitted.</summary>
    private struct ScriptedVerifier(Dictionary<int, int> choices) : IDraftVerifier
    {
        public List<int> Emitted { get; } = [];

        public int StopAfter { get; init; } = int.MaxValue;

        public readonly int Choose(int node) => choices[node];

        public readonly bool Emit(int node, int token)
        {
            Emitted.Add(token);
            return Emitted.Count >= StopAfter;
        }
    }
}
