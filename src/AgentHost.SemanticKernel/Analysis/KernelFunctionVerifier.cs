using AgentHost.Llama;
using AgentHost.Llama.Analysis;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Analysis;

/// <summary>
/// A Semantic Kernel function as a trajectory verifier: it is invoked with the arguments <c>prompt</c> and
/// <c>response</c> (a function reads those it declares) and must return a bool, or the text "true" / "false"
/// (case-insensitive, surrounding white space ignored).
/// </summary>
public sealed class KernelFunctionVerifier : ITrajectoryVerifier
{
    /// <summary>Argument name of the prompt.</summary>
    public const string PromptArgument = "prompt";

    /// <summary>Argument name of the response to judge.</summary>
    public const string ResponseArgument = "response";

    private readonly Kernel _kernel;
    private readonly KernelFunction _function;

    /// <summary>Wraps <paramref name="function"/>, invoked on <paramref name="kernel"/>.</summary>
    public KernelFunctionVerifier(Kernel kernel, KernelFunction function)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(function);
        _kernel = kernel;
        _function = function;
    }

    /// <inheritdoc />
    public string Description => string.IsNullOrEmpty(_function.PluginName) ? $"function {_function.Name}" : $"function {_function.PluginName}.{_function.Name}";

    /// <inheritdoc />
    public async ValueTask<bool> VerifyAsync(string prompt, string response, CancellationToken cancellationToken)
    {
        var arguments = new KernelArguments { [PromptArgument] = prompt, [ResponseArgument] = response };
        var result = await _function.InvokeAsync(_kernel, arguments, cancellationToken).ConfigureAwait(false);
        return result.GetValue<object>() switch
        {
            bool verdict => verdict,
            string text when bool.TryParse(text.Trim(), out var verdict) => verdict,
            var other => throw new AgentHostException(ErrorKind.InvalidArgument,
                $"Verifier {Description} returned '{other ?? "null"}'; it must return true or false."),
        };
    }
}
