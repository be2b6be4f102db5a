namespace AgentHost.Llama.Tests;

/// <summary>Finds the shared test models; a missing model fails the test loudly, never skips it.</summary>
internal static class TestModels
{
    public static string Directory { get; } = FindDirectory();

#pragma warning disable CA2255 // a test assembly's process-wide set-up is what module initializers are for
    /// <summary>
    /// Code under test reads <c>AGENTHOST_MODELS_DIR</c> itself (the model resolver) and would take a relative
    /// value against the test's bin folder; hand it the folder these tests resolved, as an absolute path.
    /// </summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void ShareAbsoluteModelsDirectory()
    {
        var value = Environment.GetEnvironmentVariable("AGENTHOST_MODELS_DIR");
        if (!string.IsNullOrEmpty(value) && !Path.IsPathRooted(value))
            Environment.SetEnvironmentVariable("AGENTHOST_MODELS_DIR", Directory);
    }
#pragma warning restore CA2255

    /// <summary>
    /// Compute threads per test context. xunit runs test collections in parallel on a 2-core machine:
    /// one thread each keeps llama.cpp's OpenMP teams from oversubscribing the cores, where their
    /// spin-waits can slow a run by orders of magnitude.
    /// </summary>
    public const int Threads = 1;

    public static string Stories260K => Require("stories260K.gguf");

    public static string TinyStories656K => Require("TinyStories-656K-Q8_0.gguf");

    private static string Require(string file)
    {
        var path = Path.Combine(Directory, file);
        if (!File.Exists(path))
            throw new InvalidOperationException($"Test model '{path}' is missing; set AGENTHOST_MODELS_DIR to the shared models folder.");
        return path;
    }

    private static string FindDirectory()
    {
        // The repository root: the README's commands run there, so a relative AGENTHOST_MODELS_DIR
        // (`../shared/models`) means a folder relative to it, not to the test assembly's bin folder.
        var root = RepositoryRoot();
        var fromEnvironment = Environment.GetEnvironmentVariable("AGENTHOST_MODELS_DIR");
        if (!string.IsNullOrEmpty(fromEnvironment))
            return Path.IsPathRooted(fromEnvironment) || root is null
                ? Path.GetFullPath(fromEnvironment)
                : Path.GetFullPath(Path.Combine(root, fromEnvironment));
        if (root is not null)
            return Path.GetFullPath(Path.Combine(root, "..", "shared", "models"));
        throw new InvalidOperationException("AGENTHOST_MODELS_DIR is not set and no ../shared/models was found.");
    }

    /// <summary>The folder holding AgentHost.sln above the test assembly, or null.</summary>
    public static string? RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "AgentHost.sln")))
                return dir.FullName;
        }
        return null;
    }
}
