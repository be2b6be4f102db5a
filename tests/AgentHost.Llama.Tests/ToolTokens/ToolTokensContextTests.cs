using AgentHost.Llama.ToolTokens;

namespace AgentHost.Llama.Tests.ToolTokens;

/// <summary>The head's input: h, then the mean of the last K hidden states.</summary>
public sealed class ToolTokensContextTests
{
    [Fact]
    public void The_features_are_h_and_the_mean_of_the_last_K_hidden_states()
    {
        var context = new ToolTokenContext(dimension: 2, window: 3);
        var features = new float[context.FeatureSize];
        float[][] states = [[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]];

        context.Push(states[0]);
        context.Write(features);
        Assert.Equal([1f, 10, 1, 10], features);   // fewer than K so far: the mean of what there is

        foreach (var state in states[1..])
            context.Push(state);
        context.Write(features);
        Assert.Equal([5f, 50, 4, 40], features);   // mean of 3, 4, 5

        context.Reset();
        context.Push(states[1]);
        context.Write(features);
        Assert.Equal([2f, 20, 2, 20], features);
    }

    [Fact]
    public void Without_a_window_the_features_are_h_alone_and_a_prior_is_widened_with_zeros_for_the_context_part()
    {
        var context = new ToolTokenContext(dimension: 2, window: 0);
        var features = new float[context.FeatureSize];
        context.Push([7, 8]);
        context.Write(features);
        Assert.Equal([7f, 8], features);

        Assert.Equal([1f, 2, 0, 0, 3, 4, 0, 0], ToolTokenContext.WidenPrior([1, 2, 3, 4], tools: 2, dimension: 2, window: 16));
        Assert.Throws<InvalidOperationException>(() => new ToolTokenContext(2, 4).Write(new float[4]));
        Assert.Throws<ArgumentException>(() => context.Push([1, 2, 3]));
    }
}
