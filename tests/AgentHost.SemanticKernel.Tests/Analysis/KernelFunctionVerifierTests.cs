using AgentHost.Llama;
using AgentHost.Llama.Analysis;
using AgentHost.Llama.Models;
using AgentHost.Llama.Tests;
using AgentHost.SemanticKernel.Analysis;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.Analysis;

/// <summary>A Semantic Kernel function as the verifier of the rollout finder, with a real Kernel.</summary>
public class KernelFunctionVerifierTests
{
    private static readonly Kernel _kernel = new();

    [Fact]
    public async Task A_bool_function_judges_the_response_and_may_read_the_prompt()
    {
        var function = KernelFunctionFactory.CreateFromMethod((string prompt, string response) => response.Contains(prompt, StringComparison.OrdinalIgnoreCase), "Mentions");
        var verifier = new KernelFunctionVerifier(_kernel, function);

        Assert.True(await verifier.VerifyAsync("dog", "The Dog barked.", CancellationToken.None));
        Assert.False(await verifier.VerifyAsync("dog", "The cat slept.", CancellationToken.None));
        Assert.Equal("function Mentions", verifier.Description);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData(" TRUE\n", true)]
    [InlineData("False", false)]
    public async Task A_string_function_may_answer_true_or_false(string answer, bool expected)
    {
        var function = KernelFunctionFactory.CreateFromMethod((string response) => answer, "Judge");

        Assert.Equal(expected, await new KernelFunctionVerifier(_kernel, function).VerifyAsync("p", "r", CancellationToken.None));
    }

    [Fact]
    public async Task Any_other_answer_is_one_clear_error()
    {
        var plugin = KernelPluginFactory.CreateFromFunctions("Checks", [KernelFunctionFactory.CreateFromMethod((string response) => "maybe", "Judge")]);
        var verifier = new KernelFunctionVerifier(_kernel, plugin["Judge"]);

        var error = await Assert.ThrowsAsync<AgentHostException>(() => verifier.VerifyAsync("p", "r", CancellationToken.None).AsTask());

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.Equal("Verifier function Checks.Judge returned 'maybe'; it must return true or false.", error.Message);
    }

    [Fact]
    public async Task The_rollout_finder_runs_with_a_kernel_function_verifier_on_a_real_model()
    {
        var calls = 0;
        var plugin = KernelPluginFactory.CreateFromFunctions("Checks",
        [
            KernelFunctionFactory.CreateFromMethod((string response) =>
            {
                Interlocked.Increment(ref calls);
                return response.Contains("girl", StringComparison.OrdinalIgnoreCase);
            }, "MentionsGirl"),
        ]);
        using var model = LlamaModel.Load("stories260k", TestModels.Stories260K,
            new ModelSettings { ContextSize = 256, Threads = TestModels.Threads, BatchThreads = TestModels.Threads, Sequences = 4 });
        using var session = await model.CreateSessionAsync();

        var report = await RolloutAnalyzer.AnalyzeAsync(session, new RolloutRequest
        {
            Prompt = "Once upon a time",
            Trajectory = ", there was a little boy named Tim.",
            Verifier = new KernelFunctionVerifier(_kernel, plugin["MentionsGirl"]),
            Options = new RolloutOptions { Rollouts = 3, Stride = 3, MaxTokens = 12, Seed = 2 },
        });

        Assert.Equal("function Checks.MentionsGirl", report.Verifier);
        Assert.False(report.TrajectoryPasses);
        foreach (var prefix in report.Prefixes)
        {
            // The verifier judges the completion only (JudgeScope.Completion, the default).
            Assert.Equal(prefix.Rollouts.Count(r => r.Text.Contains("girl", StringComparison.OrdinalIgnoreCase)), prefix.Correct);
            Assert.All(prefix.Rollouts, r => Assert.Equal(r.Text.Contains("girl", StringComparison.OrdinalIgnoreCase), r.Passed));
        }
        // One call for the whole trajectory, one per completion.
        Assert.Equal(1 + report.Stats.Completions, calls);
    }
}
