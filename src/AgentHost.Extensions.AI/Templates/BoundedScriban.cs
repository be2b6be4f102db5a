using AgentHost.Llama;
using Scriban;
using Scriban.Parsing;
using Scriban.Runtime;
using Scriban.Syntax;

namespace AgentHost.Extensions.AI.Templates;

/// <summary>
/// The one place that parses and renders Scriban, under <see cref="ScribanLimits"/>: template
/// size, statement nesting, loops, recursion, string and output size, and render time. Templates come from
/// users' folders (prompt plugins, chat formats, agents), so none of them may hang or exhaust the process.
/// </summary>
internal static class BoundedScriban
{
    // Scriban's own default, stated here so that included parts get it too (bounds the parser's stack).
    private static readonly ParserOptions _parserOptions = new() { ExpressionDepthLimit = 250 };

    /// <summary>Parses <paramref name="text"/>; the caller reports <see cref="Template.HasErrors"/> in its own words.</summary>
    /// <exception cref="AgentHostException">The text is longer than <see cref="ScribanLimits.MaxTemplateLength"/>.</exception>
    public static Template Parse(string? text, string name, ScribanLimits limits)
    {
        text ??= string.Empty;
        CheckLength(text.Length, name, limits);
        return Template.Parse(text, name, _parserOptions);
    }

    /// <summary>Refuses a template source (or included part) longer than the limit.</summary>
    /// <exception cref="AgentHostException">It is.</exception>
    public static void CheckLength(long length, string name, ScribanLimits limits)
    {
        if (length > limits.MaxTemplateLength)
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Template '{name}' has {length} characters, more than the limit of {limits.MaxTemplateLength} (MaxTemplateLength).");
    }

    /// <summary>Renders <paramref name="template"/> with <paramref name="globals"/> under the limits.</summary>
    /// <param name="template">A parsed template without errors.</param>
    /// <param name="label">Names the template in errors, e.g. <c>Chat format 'chatml'</c>.</param>
    /// <param name="globals">The template's variables; members keep their .NET names.</param>
    /// <param name="limits">The limits.</param>
    /// <param name="loader">Resolves <c>include</c>, or null when includes are not allowed.</param>
    /// <param name="cancellationToken">Cancels the render.</param>
    /// <param name="inputIterations">Loop iterations the input itself warrants on top of the limit (a conversation's
    /// messages and tools), so that a long but legitimate input renders.</param>
    /// <param name="inputLength">Characters the input itself warrants on top of the output limit (a conversation's
    /// text, which a format writes out once), so that a conversation the context can hold renders whatever its length.</param>
    /// <exception cref="AgentHostException">The template failed or broke a limit (<see cref="ErrorKind.InvalidArgument"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static string Render(Template template, string label, ScriptObject globals, ScribanLimits limits,
        ITemplateLoader? loader = null, CancellationToken cancellationToken = default, int inputIterations = 0, long inputLength = 0)
    {
        ArgumentNullException.ThrowIfNull(limits);
        var loopLimit = (int)Math.Min(int.MaxValue, (long)limits.LoopLimit + Math.Max(0, inputIterations));
        var outputLimit = (int)Math.Min(Array.MaxLength / 2, (long)limits.MaxOutputLength + Math.Max(0, inputLength));
        cancellationToken.ThrowIfCancellationRequested();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limits.RenderTimeout);
        var context = new TemplateContext
        {
            TemplateLoader = loader,
            TemplateLoaderParserOptions = _parserOptions,
            LoopLimit = loopLimit,
            LoopLimitQueryable = loopLimit,
            RecursiveLimit = limits.RecursiveLimit,
            LimitToString = outputLimit,
            OnStringLimit = ScriptLimitBehavior.Throw,
            OutputLimit = outputLimit,
            OnOutputLimit = ScriptLimitBehavior.Throw,
            RegexTimeOut = limits.RenderTimeout,
            MemberRenamer = member => member.Name,
            CancellationToken = deadline.Token,
        };
        context.PushGlobal(globals);
        try
        {
            return template.Render(context);
        }
        catch (Exception ex) when ((ex is ScriptRuntimeException or OperationCanceledException) && cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(cancellationToken);
        }
        catch (Exception ex) when ((ex is ScriptRuntimeException or OperationCanceledException) && deadline.IsCancellationRequested)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"{label} failed to render: it ran longer than the limit of {limits.RenderTimeout.TotalSeconds:0.###} s (RenderTimeout).", ex);
        }
        catch (ScriptRuntimeException ex)
        {
            // A refused include arrives wrapped: its own message says what is wrong.
            var cause = ex.InnerException is AgentHostException inner ? inner.Message : ex.Message;
            throw new AgentHostException(ErrorKind.InvalidArgument, $"{label} failed to render: {cause}{OptionBroken(cause, limits, inputIterations, outputLimit)}", ex);
        }
    }

    // Scriban's messages name its own settings; say which of ours was reached, so a user knows what to change.
    private static string OptionBroken(string cause, ScribanLimits limits, int inputIterations, int outputLimit) =>
        cause.Contains("OutputLimit", StringComparison.Ordinal) || cause.Contains("LimitToString", StringComparison.Ordinal)
            ? outputLimit > limits.MaxOutputLength
                ? $" (the limit of {limits.MaxOutputLength} characters beyond the input's {outputLimit - limits.MaxOutputLength}, MaxOutputLength)"
                : $" (the limit of {limits.MaxOutputLength} characters, MaxOutputLength)"
        : cause.Contains("iteration limit", StringComparison.Ordinal) && inputIterations > 0 ? $" (the limit of {limits.LoopLimit} iterations beyond the input's {inputIterations} items, LoopLimit)"
        : cause.Contains("iteration limit", StringComparison.Ordinal) ? $" (the limit of {limits.LoopLimit} iterations, LoopLimit)"
        : cause.Contains("recursive depth limit", StringComparison.Ordinal) ? $" (the limit of {limits.RecursiveLimit} nested calls, RecursiveLimit)"
        : "";
}
