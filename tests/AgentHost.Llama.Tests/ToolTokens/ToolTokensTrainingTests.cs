using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>Training W of a tool-token head on the cached demo corpus: loss, gradient, penalty, determinism.</summary>
[Collection(ToolTokensCollection.Name)]
public sealed class ToolTokensTrainingTests(ToolTokensFixture fixture)
{
    private static readonly ToolTokenTrainingOptions _fast = new() { Epochs = 3, LearningRate = 1e-2, Seed = 5 };

    [Theory]
    [InlineData(ToolTokenRegularizer.Frobenius)]
    [InlineData(ToolTokenRegularizer.SquaredL2)]
    public void The_gradient_matches_finite_differences(ToolTokenRegularizer regularizer)
    {
        var prior = RandomMatrix(seed: 1, scale: 0.05f);
        var weights = RandomMatrix(seed: 2, scale: 0.2f);
        var trainer = new ToolTokenTrainer(fixture.Train, prior, _fast with { Lambda = 0.5, Regularizer = regularizer });
        var gradient = new double[weights.Length];
        trainer.Loss(weights, gradient);

        var random = new Random(3);
        for (var check = 0; check < 16; check++)
        {
            var i = random.Next(weights.Length);
            var original = weights[i];
            weights[i] = original + 1e-3f;
            var up = weights[i];
            var lossUp = trainer.Loss(weights, []);
            weights[i] = original - 1e-3f;
            var down = weights[i];
            var lossDown = trainer.Loss(weights, []);
            weights[i] = original;
            var numeric = (lossUp - lossDown) / ((double)up - down);
            Assert.True(Math.Abs(numeric - gradient[i]) <= 1e-3 * Math.Abs(gradient[i]) + 1e-5, $"dL/dW[{i}]: analytic {gradient[i]:G6}, numeric {numeric:G6}");
        }
        Assert.Contains(gradient, g => Math.Abs(g) > 1e-3);
    }

    [Fact]
    public void At_step_0_the_loss_equals_the_unregularised_cross_entropy_of_the_prior()
    {
        var prior = RandomMatrix(seed: 4, scale: 0.1f);
        var trainer = new ToolTokenTrainer(fixture.Train, prior, _fast with { Lambda = 10 });

        var loss = trainer.Loss(prior, []);

        Assert.Equal(trainer.CrossEntropy(prior), loss);
        Assert.True(trainer.Loss(RandomMatrix(seed: 5, scale: 0.1f), []) > trainer.CrossEntropy(RandomMatrix(seed: 5, scale: 0.1f)));
        // The cross-entropy over [vocab ; tools] is at least the base model's loss on vocabulary labels (tools only add mass).
        Assert.True(loss > 0);
    }

    [Fact]
    public void A_large_lambda_keeps_W_near_its_prior()
    {
        var prior = RandomMatrix(seed: 6, scale: 0.1f);
        var free = new ToolTokenTrainer(fixture.Train, prior, _fast with { Lambda = 0 }).Train();
        var held = new ToolTokenTrainer(fixture.Train, prior, _fast with { Lambda = 100 }).Train();

        var freeDistance = Distance(free, prior);
        var heldDistance = Distance(held, prior);
        Assert.True(freeDistance > 0.5, $"free distance {freeDistance}");
        Assert.True(heldDistance < freeDistance / 10, $"held {heldDistance} vs free {freeDistance}");
    }

    [Fact]
    public void Training_changes_only_W_lowers_the_loss_and_is_deterministic_for_a_seed()
    {
        var prior = new float[fixture.Train.Tools.Count * fixture.Train.Dimension];
        var priorCopy = (float[])prior.Clone();
        var hidden = (float[])fixture.Train.Features.Clone();
        var labels = (int[])fixture.Train.Labels.Clone();
        var lse = (float[])fixture.Train.VocabLogSumExp.Clone();
        var progress = new List<ToolTokenTrainingProgress>();
        var trainer = new ToolTokenTrainer(fixture.Train, prior, _fast);

        var first = trainer.Train(new SyncProgress<ToolTokenTrainingProgress>(progress.Add));
        var second = new ToolTokenTrainer(fixture.Train, prior, _fast).Train();
        var otherSeed = new ToolTokenTrainer(fixture.Train, prior, _fast with { Seed = 6 }).Train();

        Assert.Equal(priorCopy, prior);
        Assert.Equal(hidden, fixture.Train.Features);
        Assert.Equal(labels, fixture.Train.Labels);
        Assert.Equal(lse, fixture.Train.VocabLogSumExp);
        Assert.Equal(first, second);
        Assert.NotEqual(first, otherSeed);
        Assert.Equal([1, 2, 3], progress.Select(p => p.Epoch));
        Assert.True(trainer.CrossEntropy(first) < trainer.CrossEntropy(prior));
        Assert.True(progress[^1].Loss < progress[0].Loss);
    }

    [Fact]
    public void Only_tool_tokens_trains_on_call_starts_alone()
    {
        var prior = new float[fixture.Train.Tools.Count * fixture.Train.Dimension];
        var all = new ToolTokenTrainer(fixture.Train, prior, _fast);
        var onlyTools = new ToolTokenTrainer(fixture.Train, prior, _fast with { OnlyToolTokens = true });

        Assert.Equal(fixture.Train.Count, all.PositionCount);
        Assert.Equal(fixture.Train.CallPositions, onlyTools.PositionCount);
    }

    [Fact]
    public void Bad_training_settings_are_clear_errors()
    {
        var prior = new float[fixture.Train.Tools.Count * fixture.Train.Dimension];
        var error = Assert.Throws<AgentHostException>(() => new ToolTokenTrainer(fixture.Train, prior, _fast with { LearningRate = 0 }));
        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Throws<AgentHostException>(() => new ToolTokenTrainer(fixture.Train, prior, _fast with { Epochs = 0 }));
        Assert.Throws<AgentHostException>(() => new ToolTokenTrainer(fixture.Train, prior, _fast with { Lambda = -1 }));
    }

    private float[] RandomMatrix(int seed, float scale)
    {
        var random = new Random(seed);
        var values = new float[fixture.Train.Tools.Count * fixture.Train.Dimension];
        for (var i = 0; i < values.Length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return values;
    }

    private static double Distance(float[] a, float[] b)
    {
        var sum = 0.0;
        for (var i = 0; i < a.Length; i++)
            sum += (a[i] - b[i]) * (double)(a[i] - b[i]);
        return Math.Sqrt(sum);
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
