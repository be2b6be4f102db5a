using AgentHost.Llama;
using AgentHost.Llama.Tests.Support;
using AgentHost.Plugins;
using AgentHost.SemanticKernel.Plugins;
using AgentHost.SemanticKernel.Tests.Support;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests.Plugins;

public sealed class PluginLoaderTests : IDisposable
{
    private const string GoodConfig = """{ "template_format": "scriban", "description": "Greets someone." }""";

    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Writes <c>prompts/&lt;plugin&gt;/&lt;function&gt;/skprompt.txt</c> (and config.json when given) under the temp folder.</summary>
    private string WriteFunction(string plugin, string function, string? prompt = "user: Hello {{ name }}", string? config = GoodConfig, string root = "prompts")
    {
        var directory = _folder.Combine(root, plugin, function);
        Directory.CreateDirectory(directory);
        if (prompt is not null)
            File.WriteAllText(Path.Combine(directory, PluginLoader.PromptFileName), prompt);
        if (config is not null)
            File.WriteAllText(Path.Combine(directory, PluginLoader.ConfigFileName), config);
        return directory;
    }

    private AgentHostException ImportFails(PluginOptions options, Kernel? kernel = null)
    {
        kernel ??= new Kernel();
        var before = kernel.Plugins.Count;
        var error = Assert.Throws<AgentHostException>(() => kernel.ImportPlugins(options, _folder.Path, NativePlugins.Create()));
        Assert.Equal(ErrorKind.InvalidPlugin, error.Kind);
        Assert.Equal(before, kernel.Plugins.Count); // nothing half-imported
        return error;
    }

    private static PluginOptions Prompts(params string[] directories) => new() { PromptDirectories = [.. directories] };

    [Fact]
    public async Task Imports_configured_native_and_prompt_plugins_relative_to_the_base_directory()
    {
        WriteFunction("Greetings", "Hello");
        var kernel = new Kernel();

        var imported = kernel.ImportPlugins(new PluginOptions { Native = ["math", "Text"], PromptDirectories = ["prompts"] }, _folder.Path, NativePlugins.Create());

        // Native names take the catalog's spelling whatever the configuration's case.
        Assert.Equal(["Math", "Text", "Greetings"], imported.Select(p => p.Name).ToArray());
        Assert.Equal(["Math", "Text", "Greetings"], kernel.Plugins.Select(p => p.Name).ToArray());
        var value = await kernel.InvokeAsync("Math", "Evaluate", new KernelArguments { ["expression"] = "(1 + 2) * 2^3" });
        Assert.Equal(24, value.GetValue<double>());
        var reversed = await kernel.InvokeAsync("Text", "Reverse", new KernelArguments { ["text"] = "stressed" });
        Assert.Equal("desserts", reversed.GetValue<string>());
        Assert.Equal("Greets someone.", kernel.Plugins.GetFunction("Greetings", "Hello").Description);
    }

    [Fact]
    public async Task Native_time_plugin_uses_the_supplied_clock()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 2, 27, 12, 0, 0, TimeSpan.Zero));
        var kernel = new Kernel();
        kernel.ImportPlugins(new PluginOptions { Native = ["Time"] }, _folder.Path, NativePlugins.Create(clock));

        Assert.Equal("2026-02-27", (await kernel.InvokeAsync("Time", "Today")).GetValue<string>());
        var later = await kernel.InvokeAsync("Time", "AddDays", new KernelArguments { ["date"] = "2026-02-27", ["days"] = 2 });
        Assert.Equal("2026-03-01", later.GetValue<string>());
    }

    [Fact]
    public void Absolute_prompt_directories_are_used_as_given()
    {
        WriteFunction("Greetings", "Hello", root: "elsewhere");
        var kernel = new Kernel();
        kernel.ImportPlugins(Prompts(_folder.Combine("elsewhere")), "/nonexistent-base");
        Assert.NotNull(kernel.Plugins.GetFunction("Greetings", "Hello"));
    }

    [Fact]
    public void Semantic_Kernel_templates_still_work()
    {
        WriteFunction("Greetings", "Hello", prompt: "Hello {{$name}}", config: """{ "description": "SK format" }""");
        WriteFunction("Greetings", "Bye", prompt: "Bye {{ name }}", config: null);
        var kernel = new Kernel();
        kernel.ImportPlugins(Prompts("prompts"), _folder.Path);
        Assert.Equal(2, kernel.Plugins["Greetings"].FunctionCount);
    }

    [Fact]
    public void Hidden_folders_are_skipped()
    {
        WriteFunction("Greetings", "Hello");
        Directory.CreateDirectory(_folder.Combine("prompts", ".git", "objects"));
        Directory.CreateDirectory(_folder.Combine("prompts", "Greetings", ".cache"));
        var kernel = new Kernel();
        kernel.ImportPlugins(Prompts("prompts"), _folder.Path);
        Assert.Equal("Greetings", Assert.Single(kernel.Plugins).Name);
        Assert.Equal(1, kernel.Plugins["Greetings"].FunctionCount);
    }

    [Fact]
    public void Unknown_native_plugin_lists_the_available_ones()
    {
        var error = ImportFails(new PluginOptions { Native = ["Math", "Weather"] });
        Assert.Equal("Unknown native plugin 'Weather' in Plugins:Native; available: Math, Time, Text.", error.Message);
    }

    [Fact]
    public void Missing_prompt_folder_is_named()
    {
        var error = ImportFails(Prompts("no-such-prompts"));
        Assert.Equal($"Prompt plugin folder '{_folder.Combine("no-such-prompts")}' does not exist.", error.Message);

        File.WriteAllText(_folder.Combine("a-file"), "x");
        Assert.Contains("is a file, not a folder", ImportFails(Prompts("a-file")).Message);
        Assert.Contains("empty entry", ImportFails(Prompts(" ")).Message);
    }

    [Fact]
    public void Function_folder_without_prompt_is_named()
    {
        WriteFunction("Greetings", "Hello");
        var broken = WriteFunction("Greetings", "Bye", prompt: null);
        var error = ImportFails(Prompts("prompts"));
        Assert.Equal($"Prompt plugin 'Greetings', function 'Bye': '{broken}' has no skprompt.txt.", error.Message);
    }

    [Fact]
    public void Invalid_config_JSON_is_named_with_its_file()
    {
        var directory = WriteFunction("Greetings", "Hello", config: """{ "template_format": "scriban", """);
        var error = ImportFails(Prompts("prompts"));
        Assert.StartsWith($"Prompt plugin 'Greetings', function 'Hello': '{Path.Combine(directory, "config.json")}' is not a valid prompt config: ", error.Message);
        Assert.Contains("LineNumber: 0", error.Message); // the JSON error's position, not just "cannot deserialize"

        File.WriteAllText(Path.Combine(directory, "config.json"), """{ "input_variables": "name" }""");
        Assert.Contains("config.json' is not a valid prompt config", ImportFails(Prompts("prompts")).Message);

        File.WriteAllText(Path.Combine(directory, "config.json"), "null");
        Assert.Contains("config.json' is not a valid prompt config", ImportFails(Prompts("prompts")).Message);
    }

    [Fact]
    public void Template_syntax_error_is_named_with_its_file_and_position()
    {
        var directory = WriteFunction("Greetings", "Hello", prompt: "user: Hello\n{{ if name }} no end");
        var error = ImportFails(Prompts("prompts"));
        Assert.StartsWith($"Prompt plugin 'Greetings', function 'Hello': '{Path.Combine(directory, "skprompt.txt")}' is not a valid 'scriban' template: ", error.Message);
        Assert.Matches(@"\(\d+,\d+\)", error.Message);
        Assert.DoesNotContain("(Parameter", error.Message);
    }

    [Fact]
    public void Unknown_template_format_is_named()
    {
        WriteFunction("Greetings", "Hello", config: """{ "template_format": "handlebars" }""");
        Assert.Contains("is not a valid 'handlebars' template", ImportFails(Prompts("prompts")).Message);
    }

    [Fact]
    public void Empty_prompt_is_named()
    {
        var directory = WriteFunction("Greetings", "Hello", prompt: "  \n");
        Assert.Equal($"Prompt plugin 'Greetings', function 'Hello': '{Path.Combine(directory, "skprompt.txt")}' is empty.", ImportFails(Prompts("prompts")).Message);
    }

    [Fact]
    public void Misplaced_or_misnamed_folders_are_named()
    {
        // The configured folder points at a plugin instead of a folder of plugins.
        WriteFunction("Greetings", "Hello");
        var plugin = _folder.Combine("prompts", "Greetings");
        Assert.Contains($"Prompt plugin 'Hello' ('{Path.Combine(plugin, "Hello")}') holds skprompt.txt itself", ImportFails(Prompts(plugin)).Message);
        // ... or at a function folder.
        Assert.Contains("holds skprompt.txt itself; it must hold plugin folders", ImportFails(Prompts(Path.Combine(plugin, "Hello"))).Message);

        Directory.CreateDirectory(_folder.Combine("empty-plugin", "Nothing"));
        Assert.Equal($"Prompt plugin 'Nothing' ('{_folder.Combine("empty-plugin", "Nothing")}') has no function folders (<Nothing>/<Function>/skprompt.txt).", ImportFails(Prompts("empty-plugin")).Message);

        WriteFunction("My Plugin", "Hello", root: "spaces");
        Assert.Contains("'My Plugin' is not a valid plugin name", ImportFails(Prompts("spaces")).Message);
        WriteFunction("Greetings", "Say-Hello", root: "dashes");
        Assert.Contains("'Say-Hello' is not a valid function name", ImportFails(Prompts("dashes")).Message);
    }

    [Fact]
    public void Duplicate_plugin_names_are_named()
    {
        WriteFunction("Math", "Explain");
        var error = ImportFails(new PluginOptions { Native = ["Math"], PromptDirectories = ["prompts"] });
        Assert.Equal($"Plugin name 'Math' is used twice: by the native plugins and by {_folder.Combine("prompts", "Math")}.", error.Message);

        var kernel = new Kernel();
        kernel.ImportPlugins(new PluginOptions { Native = ["Text"] }, _folder.Path, NativePlugins.Create());
        Assert.Contains("'Text' is used twice: by the kernel and by the native plugins", ImportFails(new PluginOptions { Native = ["text"] }, kernel).Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_failing_skill_yields_an_error_result_in_the_tool_loop(bool detailedErrors)
    {
        // The model (a double) asks for Math.Evaluate("1 / 0"), then answers once it sees the tool result.
        var model = new RecordingChatClient((messages, options) =>
        {
            if (messages[^1].Role == ChatRole.Tool)
                return new ChatResponse(new ChatMessage(ChatRole.Assistant, "I cannot divide by zero."));
            var tool = Assert.Single(options!.Tools!, t => t.Name.EndsWith("Evaluate", StringComparison.Ordinal));
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, [new Microsoft.Extensions.AI.FunctionCallContent("call-1", tool.Name, new Dictionary<string, object?> { ["expression"] = "1 / 0" })]));
        });
        var client = model.AsBuilder().UseKernelFunctionInvocation().Build();
        // Off by default: the model then only learns that the function failed, not why.
        client.GetService<FunctionInvokingChatClient>()!.IncludeDetailedErrors = detailedErrors;
        var builder = Kernel.CreateBuilder();
        builder.Services.AddSingleton(client);
        var kernel = builder.Build();
        kernel.ImportPlugins(new PluginOptions { Native = ["Math"] }, _folder.Path, NativePlugins.Create());

        var answer = await kernel.InvokePromptAsync("What is 1 / 0?", new KernelArguments(new PromptExecutionSettings { FunctionChoiceBehavior = FunctionChoiceBehavior.Auto() }));

        Assert.Equal("I cannot divide by zero.", answer.ToString());
        Assert.Equal(2, model.Requests.Count);
        var result = Assert.Single(model.Requests[1].Messages.SelectMany(m => m.Contents).OfType<Microsoft.Extensions.AI.FunctionResultContent>());
        Assert.Equal("call-1", result.CallId);
        Assert.IsType<DivideByZeroException>(result.Exception);
        var text = result.Result?.ToString() ?? "";
        Assert.StartsWith("Error: Function failed.", text);
        Assert.Equal(detailedErrors, text.Contains("Division by zero: the right side of the '/' at position 3 is 0.", StringComparison.Ordinal));
    }
}
