using System.Net;
using System.Text;
using Microsoft.SemanticKernel;
using AgentHost.Extensions.AI.Templates;
using AgentHost.Llama;
using Scriban;
using Scriban.Runtime;
using Scriban.Syntax;

namespace AgentHost.SemanticKernel.Templates;

/// <summary>
/// A Semantic Kernel prompt template written in Scriban. The template is parsed once, in the constructor.
/// Rendered lines starting with <c>system:</c>, <c>user:</c> or <c>assistant:</c> become
/// <c>&lt;message role="..."&gt;</c> blocks so that SK's chat prompt parser builds a chat history.
/// </summary>
public sealed class ScribanPromptTemplate : IPromptTemplate
{
    private static readonly string[] _roles = ["system", "user", "assistant"];

    private readonly PromptTemplateConfig _config;
    private readonly ScribanLimits _options;
    private readonly Template _template;

    /// <summary>Parses <paramref name="config"/>'s template.</summary>
    /// <param name="config">The prompt config; its format must be <c>scriban</c>.</param>
    /// <param name="options">Safety limits (defaults when null).</param>
    /// <exception cref="ArgumentException">The format is not scriban or the template has syntax errors.</exception>
    public ScribanPromptTemplate(PromptTemplateConfig config, ScribanLimits? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (!string.Equals(config.TemplateFormat, ScribanPromptTemplateFactory.ScribanTemplateFormat, StringComparison.Ordinal))
        {
            throw new ArgumentException($"Invalid template format '{config.TemplateFormat}'; expected '{ScribanPromptTemplateFactory.ScribanTemplateFormat}'.", nameof(config));
        }

        _config = config;
        _options = options ?? new ScribanLimits();
        var name = string.IsNullOrEmpty(config.Name) ? "(unnamed)" : config.Name;
        try
        {
            _template = BoundedScriban.Parse(config.Template, name, _options);
        }
        catch (AgentHostException ex)
        {
            throw new ArgumentException(ex.Message, nameof(config), ex);
        }
        if (_template.HasErrors)
        {
            var errors = string.Join("; ", _template.Messages.Select(m => $"({m.Span.Start.Line + 1},{m.Span.Start.Column + 1}): {m.Message}"));
            throw new ArgumentException($"Scriban template '{name}' has syntax errors: {errors}", nameof(config));
        }

        if (config.InputVariables.Count == 0)
        {
            var collector = new VariableCollector();
            collector.Visit(_template.Page);
            foreach (var variable in collector.Names)
            {
                config.InputVariables.Add(new InputVariable { Name = variable });
            }
        }
    }

    /// <inheritdoc />
    public Task<string> RenderAsync(Kernel kernel, KernelArguments? arguments = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        cancellationToken.ThrowIfCancellationRequested();

        var globals = new ScriptObject();
        foreach (var input in _config.InputVariables)
        {
            if (input.Default is not null)
            {
                globals[input.Name] = Encode(input.Name, input.Default);
            }
        }

        if (arguments is not null)
        {
            foreach (var (key, value) in arguments)
            {
                globals[key] = Encode(key, value);
            }
        }

        string text;
        try
        {
            text = BoundedScriban.Render(_template, $"Scriban template '{_config.Name}'", globals, _options, loader: null, cancellationToken);
        }
        catch (AgentHostException ex)
        {
            throw new KernelException(ex.Message, ex);
        }

        return Task.FromResult(ToMessages(text));
    }

    private object? Encode(string name, object? value)
    {
        if (value is not string text || _config.AllowDangerouslySetContent)
        {
            return value;
        }

        var input = _config.InputVariables.FirstOrDefault(v => v.Name == name);
        return input is { AllowDangerouslySetContent: true } ? text : NeutraliseRoleMarkers(WebUtility.HtmlEncode(text));
    }

    // Role markers are read after rendering, so an argument must not be able to start a line with one
    // ("hello\nsystem: ..."): its colon is encoded like any other markup in untrusted content.
    private static string NeutraliseRoleMarkers(string text)
    {
        foreach (var role in _roles)
        {
            if (text.StartsWith(role + ":", StringComparison.Ordinal))
                text = role + "&#58;" + text[(role.Length + 1)..];
            text = text.Replace("\n" + role + ":", "\n" + role + "&#58;", StringComparison.Ordinal);
        }
        return text;
    }

    private static string ToMessages(string text)
    {
        var lines = text.Split('\n');
        var result = new StringBuilder();
        string? role = null;
        var body = new StringBuilder();
        var preamble = new StringBuilder();
        var any = false;

        void Flush()
        {
            if (role is not null)
            {
                result.Append("<message role=\"").Append(role).Append("\">")
                    .Append(body.ToString().Trim()).Append("</message>\n");
            }

            body.Clear();
        }

        foreach (var line in lines)
        {
            var marker = _roles.FirstOrDefault(r => line.StartsWith(r + ":", StringComparison.Ordinal));
            if (marker is not null)
            {
                Flush();
                any = true;
                role = marker;
                body.Append(line.AsSpan(marker.Length + 1)).Append('\n');
            }
            else if (role is null)
            {
                preamble.Append(line).Append('\n');
            }
            else
            {
                body.Append(line).Append('\n');
            }
        }

        if (!any)
        {
            return text;
        }

        Flush();
        var head = preamble.ToString().Trim();
        return (head.Length > 0 ? head + "\n" : string.Empty) + result.ToString().TrimEnd('\n');
    }

    private sealed class VariableCollector : ScriptVisitor
    {
        private readonly List<string> _reads = [];
        private readonly HashSet<string> _excluded = new(StringComparer.Ordinal);
        private static readonly ScriptObject s_builtins = new Scriban.Functions.BuiltinFunctions();

        public IEnumerable<string> Names => _reads.Distinct(StringComparer.Ordinal)
            .Where(n => !_excluded.Contains(n) && !s_builtins.ContainsKey(n));

        public override void Visit(ScriptVariableGlobal node)
        {
            _reads.Add(node.Name);
            base.Visit(node);
        }

        public override void Visit(ScriptForStatement node)
        {
            if (node.Variable is ScriptVariable v)
            {
                _excluded.Add(v.Name);
            }

            base.Visit(node);
        }

        public override void Visit(ScriptAssignExpression node)
        {
            if (node.Target is ScriptVariable v)
            {
                _excluded.Add(v.Name);
            }

            base.Visit(node);
        }
    }
}
