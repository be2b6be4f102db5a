using AgentHost.Llama;
using AgentHost.Llama.Models;
using Microsoft.Extensions.Configuration;

namespace AgentHost.Cli;

/// <summary>
/// Binds configuration sections so that a value of the wrong type is one clear error naming its key. The binder
/// throws for a bad property of an object but silently drops a dictionary entry that fails (a catalog model with
/// <c>ContextSize=abc</c> would simply vanish), so each catalog entry is bound on its own.
/// </summary>
internal static class ConfigurationBinding
{
    /// <summary>Binds section <paramref name="sectionName"/> into a new <typeparamref name="T"/>.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the key whose value does not convert.</exception>
    public static T Bind<T>(IConfiguration configuration, string sectionName) where T : new()
    {
        var options = new T();
        Run(() => configuration.GetSection(sectionName).Bind(options));
        return options;
    }

    /// <summary>Binds the <c>AgentHost</c> section, every catalog entry included, and range-checks every model's settings.</summary>
    public static AgentHostOptions BindAgentHost(IConfiguration configuration)
    {
        var options = Bind<AgentHostOptions>(configuration, AgentHostOptions.SectionName);
        foreach (var entry in configuration.GetSection(AgentHostOptions.SectionName).GetSection("Models").GetChildren())
        {
            var settings = new ModelSettings();
            Run(() => entry.Bind(settings));
            settings.Validate(entry.Key);
            options.Models[entry.Key] = settings;
        }
        options.Validate();
        return options;
    }

    private static void Run(Action bind)
    {
        try
        {
            bind();
        }
        catch (InvalidOperationException ex)
        {
            // The binder's message names the key and the value: "Failed to convert configuration value 'abc' at 'AgentHost:Models:x:ContextSize' to type 'System.Int32'."
            throw new AgentHostException(ErrorKind.InvalidArgument, $"Invalid configuration: {ex.Message}");
        }
    }
}
