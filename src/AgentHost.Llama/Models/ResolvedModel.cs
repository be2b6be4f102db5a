namespace AgentHost.Llama.Models;

/// <summary>A model file ready to be loaded, with the settings that go with it.</summary>
/// <param name="Name">The catalog name, or the file name for an explicit path that is not in the catalog.</param>
/// <param name="Path">Full path of the model file.</param>
/// <param name="Settings">A copy of the catalog entry's settings (defaults for a file the catalog does not know).</param>
/// <param name="Source">Where the file was found.</param>
public sealed record ResolvedModel(string Name, string Path, ModelSettings Settings, ModelSource Source);
