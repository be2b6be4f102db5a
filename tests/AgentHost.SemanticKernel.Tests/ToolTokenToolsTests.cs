using AgentHost.Llama;
using AgentHost.Llama.Tests.Support;
using AgentHost.Plugins;
using AgentHost.SemanticKernel.Plugins;
using AgentHost.SemanticKernel.ToolTokens;
using Microsoft.SemanticKernel;

namespace AgentHost.SemanticKernel.Tests;

/// <summary>Tool resolution for tool-token heads and the Files root check, as libraries (no CLI in between).</summary>
public sealed class ToolTokenToolsTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static ToolTokenTools WithMath() => new(() =>
    {
        var kernel = new Kernel();
        kernel.ImportPlugins(new PluginOptions { Native = ["Math"] }, AppContext.BaseDirectory, NativePlugins.Create());
        return kernel;
    });

    [Fact]
    public void No_names_means_the_built_in_arithmetic_tools()
        => Assert.Equal(["add", "subtract", "multiply"], WithMath().FromNames([]).Select(t => t.Name));

    [Fact]
    public void A_plugin_names_all_its_functions_and_a_function_itself()
    {
        var tools = WithMath();

        Assert.Contains("Add", tools.FromNames(["Math"]).Select(t => t.Name));
        Assert.Equal(["add", "Add"], tools.FromNames(["arithmetic,Math.Add"]).Where(t => t.Name is "add" or "Add").Select(t => t.Name));
        Assert.Equal(["Divide", "add"], tools.Resolve(["Divide", "add"]).Select(t => t.Name));
    }

    [Theory]
    [InlineData("Math.Nope", "unknown tool or plugin 'Math.Nope'")]
    [InlineData("nope", "unknown tool or plugin 'nope'; built-in: arithmetic (add, subtract, multiply); configured plugins: Math.")]
    public void An_unknown_tool_is_an_invalid_argument(string name, string expected)
    {
        var error = Assert.Throws<AgentHostException>(() => WithMath().Resolve([name]));

        Assert.Equal(ErrorKind.InvalidArgument, error.Kind);
        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_files_root_resolves_against_the_base_folder_or_is_one_clear_error()
    {
        Directory.CreateDirectory(_folder.Combine("docs"));

        Assert.Equal(_folder.Combine("docs"), new PluginOptions { Native = ["Files"], FilesRoot = "docs" }.ResolveFilesRoot(_folder.Path));
        Assert.Null(new PluginOptions { Native = ["Math"] }.ResolveFilesRoot(_folder.Path));
        var noRoot = Assert.Throws<AgentHostException>(() => new PluginOptions { Native = ["files"] }.ResolveFilesRoot(_folder.Path));
        Assert.Equal(ErrorKind.InvalidPlugin, noRoot.Kind);
        Assert.Equal("Plugins:Native lists Files but Plugins:FilesRoot is empty; set it to the folder the Files plugin may read.", noRoot.Message);
        var missing = Assert.Throws<AgentHostException>(() => new PluginOptions { FilesRoot = "missing" }.ResolveFilesRoot(_folder.Path));
        Assert.Equal($"Plugins:FilesRoot '{_folder.Combine("missing")}' does not exist.", missing.Message);
    }
}
