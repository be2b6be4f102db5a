using System.Text.RegularExpressions;

namespace AgentHost.Llama.Models;

/// <summary>
/// A model on the Hugging Face Hub, named wherever a model is named: <c>hf:OWNER/REPO/FILE.gguf</c> (one file, which may
/// sit in a folder of the repository) or <c>hf:OWNER/REPO:QUANT</c> (the repository's one .gguf file of that quantisation,
/// e.g. <c>Q4_K_M</c>; <c>hf:OWNER/REPO</c> means <see cref="DefaultQuantization"/>).
/// </summary>
/// <param name="Owner">The user or organisation, e.g. <c>Qwen</c>.</param>
/// <param name="Repository">The repository, e.g. <c>Qwen2.5-0.5B-Instruct-GGUF</c>.</param>
/// <param name="File">The file's path in the repository, or null when <paramref name="Quantization"/> chooses it.</param>
/// <param name="Quantization">The quantisation that chooses the file, or null when <paramref name="File"/> names it.</param>
public sealed partial record HuggingFaceReference(string Owner, string Repository, string? File, string? Quantization)
{
    /// <summary>What every reference starts with.</summary>
    public const string Prefix = "hf:";

    /// <summary>The quantisation of <c>hf:OWNER/REPO</c> without one (the catalog's too).</summary>
    public const string DefaultQuantization = "Q4_K_M";

    // Between the parts of a cached file's name: Hugging Face forbids "--" in owner and repository names.
    private const string CacheSeparator = "--";

    private const string Syntax = "write hf:OWNER/REPO/FILE.gguf or hf:OWNER/REPO:QUANT, e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M";

    /// <summary>Whether <paramref name="value"/> is meant as a reference (starts with <c>hf:</c>, any case).</summary>
    public static bool IsReference(string? value) => value is not null && value.TrimStart().StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses <c>hf:OWNER/REPO/FILE.gguf</c>, <c>hf:OWNER/REPO:QUANT</c> or <c>hf:OWNER/REPO</c>.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the value and the syntax.</exception>
    public static HuggingFaceReference Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var text = value.Trim();
        if (!IsReference(text))
            throw Invalid(value, "it does not start with hf:");
        var rest = text[Prefix.Length..];
        string? quantization = null;
        var colon = rest.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0)
        {
            quantization = rest[(colon + 1)..];
            rest = rest[..colon];
            if (!QuantizationPattern().IsMatch(quantization))
                throw Invalid(value, $"'{quantization}' is not a quantisation (letters, digits and _ , e.g. Q4_K_M)");
        }

        var parts = rest.Split('/');
        if (parts.Length < 2 || !IsName(parts[0]) || !IsName(parts[1]))
            throw Invalid(value, "it needs an OWNER/REPO of letters, digits, '-', '_' and '.'");
        if (parts.Length == 2)
            return new HuggingFaceReference(parts[0], parts[1], null, quantization ?? DefaultQuantization);
        if (quantization is not null)
            throw Invalid(value, "give either a file or a quantisation, not both");

        var file = string.Join('/', parts[2..]);
        if (parts[2..].Any(p => p.Length == 0 || p is "." or ".." || p.Contains('\\', StringComparison.Ordinal))
            || !file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) || Path.GetFileName(file).Length <= ".gguf".Length)
        {
            throw Invalid(value, $"'{file}' is not the path of a .gguf file in the repository");
        }
        return new HuggingFaceReference(parts[0], parts[1], file, null);
    }

    /// <summary>The reference a cached file's name stands for (see <see cref="CacheFileName"/>), or null for any other name.</summary>
    public static HuggingFaceReference? FromCacheFileName(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        var parts = fileName.Split(CacheSeparator, 3);
        if (parts.Length != 3 || !IsName(parts[0]) || !IsName(parts[1]) || !fileName.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return null;
        return new HuggingFaceReference(parts[0], parts[1], parts[2].Replace(CacheSeparator, "/", StringComparison.Ordinal), null);
    }

    /// <summary>
    /// The reference of a download URL of the form <c>ENDPOINT/OWNER/REPO/resolve/main/FILE</c>, or null for any other
    /// URL (another host, another revision).
    /// </summary>
    public static HuggingFaceReference? FromUrl(Uri url, Uri endpoint)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(endpoint);
        var root = WithSlash(endpoint);
        if (!url.IsAbsoluteUri || !root.IsBaseOf(url) || !string.IsNullOrEmpty(url.Query))
            return null;
        var parts = root.MakeRelativeUri(url).OriginalString.Split('/');
        if (parts.Length < 5 || parts[2] != "resolve" || parts[3] != "main" || !IsName(parts[0]) || !IsName(parts[1]))
            return null;
        var file = Uri.UnescapeDataString(string.Join('/', parts[4..]));
        return file.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? new HuggingFaceReference(parts[0], parts[1], file, null) : null;
    }

    /// <summary><c>OWNER/REPO</c>.</summary>
    public string RepositoryId => $"{Owner}/{Repository}";

    /// <summary>
    /// The name of the file in the user cache: <c>OWNER--REPO--FILE</c> (a folder's <c>/</c> written as <c>--</c>),
    /// so that files of the same name from two repositories never meet.
    /// </summary>
    public string CacheFileName => $"{Owner}{CacheSeparator}{Repository}{CacheSeparator}{RequireFile().Replace("/", CacheSeparator, StringComparison.Ordinal)}";

    /// <summary>This reference with the file chosen.</summary>
    public HuggingFaceReference WithFile(string file) => this with { File = file, Quantization = null };

    /// <summary>The file's download URL: <c>ENDPOINT/OWNER/REPO/resolve/main/FILE</c>.</summary>
    public Uri FileUrl(Uri endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var path = string.Join('/', RequireFile().Split('/').Select(Uri.EscapeDataString));
        return new Uri(WithSlash(endpoint), $"{Uri.EscapeDataString(Owner)}/{Uri.EscapeDataString(Repository)}/resolve/main/{path}");
    }

    /// <summary>Whether this reference names <paramref name="other"/>'s file: the same repository (any case) and file, or a file of its quantisation.</summary>
    public bool Matches(HuggingFaceReference other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (!string.Equals(RepositoryId, other.RepositoryId, StringComparison.OrdinalIgnoreCase) || other.File is null)
            return false;
        return File is not null ? File == other.File : HasQuantization(other.File, Quantization!);
    }

    /// <inheritdoc />
    public override string ToString() => File is not null ? $"{Prefix}{RepositoryId}/{File}" : $"{Prefix}{RepositoryId}:{Quantization}";

    /// <summary>
    /// The file of <paramref name="files"/> (a repository's file list) this reference names: its file if listed, else the
    /// one single-file .gguf of its quantisation.
    /// </summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.ModelNotFound"/> when no file or several match (listing them).</exception>
    public HuggingFaceReference Choose(IReadOnlyList<string> files)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (File is not null)
        {
            return files.Contains(File, StringComparer.Ordinal) ? this
                : throw new AgentHostException(ErrorKind.ModelNotFound, $"{this}: the repository {RepositoryId} has no file '{File}'.");
        }

        var models = files.Where(f => f.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)
            && !Path.GetFileName(f).Contains("mmproj", StringComparison.OrdinalIgnoreCase)).ToList();
        var matches = models.Where(f => HasQuantization(f, Quantization!)).ToList();
        var whole = matches.Where(f => !SplitPartPattern().IsMatch(f)).ToList();
        if (whole.Count == 1)
            return WithFile(whole[0]);
        if (whole.Count > 1)
            throw new AgentHostException(ErrorKind.ModelNotFound, $"{this}: {whole.Count} files of the repository match {Quantization}: {string.Join(", ", whole)}; name one as hf:{RepositoryId}/FILE.");
        if (matches.Count > 0)
            throw new AgentHostException(ErrorKind.ModelNotFound, $"{this}: the repository holds {Quantization} only split into parts ({string.Join(", ", matches)}); AgentHost loads single-file GGUF models.");

        var there = models.Select(f => QuantizationOf(f) ?? f).Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.OrdinalIgnoreCase).ToList();
        var list = there.Count == 0 ? "it holds no .gguf file" : $"it has: {string.Join(", ", there)}";
        throw new AgentHostException(ErrorKind.ModelNotFound, $"{this}: the repository {RepositoryId} has no .gguf file of quantisation {Quantization}; {list}.");
    }

    /// <summary>
    /// Whether a file's name holds the quantisation as a whole word: between non-word characters (anything but letters,
    /// digits and _), any case. So Q4_K_M matches <c>model-Q4_K_M.gguf</c> and <c>model.q4_k_m.gguf</c>; Q4_K matches neither.
    /// </summary>
    internal static bool HasQuantization(string file, string quantization)
    {
        var name = Path.GetFileName(file);
        var stem = name[..^".gguf".Length];
        for (var start = stem.IndexOf(quantization, StringComparison.OrdinalIgnoreCase); start >= 0;
             start = stem.IndexOf(quantization, start + 1, StringComparison.OrdinalIgnoreCase))
        {
            var end = start + quantization.Length;
            if ((start == 0 || !IsWordChar(stem[start - 1])) && (end == stem.Length || !IsWordChar(stem[end])))
                return true;
        }
        return false;
    }

    /// <summary>The quantisation a file's name states (e.g. Q4_K_M, IQ3_XS, F16), upper case, or null.</summary>
    internal static string? QuantizationOf(string file)
    {
        var matches = QuantizationTagPattern().Matches(Path.GetFileName(file));
        return matches.Count == 0 ? null : matches[^1].Value.ToUpperInvariant();
    }

    private static bool IsWordChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '_';

    private static bool IsName(string part) => part.Length > 0 && part.Length <= 96 && NamePattern().IsMatch(part) && !part.Contains("..", StringComparison.Ordinal);

    private static Uri WithSlash(Uri endpoint) => endpoint.AbsoluteUri.EndsWith('/') ? endpoint : new Uri(endpoint.AbsoluteUri + "/");

    private string RequireFile() => File ?? throw new InvalidOperationException($"{this} names no file yet.");

    private static AgentHostException Invalid(string value, string why)
        => new(ErrorKind.InvalidArgument, $"'{value.Trim()}' is not a Hugging Face reference ({why}); {Syntax}.");

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9_]+$")]
    private static partial Regex QuantizationPattern();

    [GeneratedRegex(@"-\d{5}-of-\d{5}\.gguf$", RegexOptions.IgnoreCase)]
    private static partial Regex SplitPartPattern();

    [GeneratedRegex(@"(?<![A-Za-z0-9])(?:I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|BF16|F16|F32)(?![A-Za-z0-9])", RegexOptions.IgnoreCase)]
    private static partial Regex QuantizationTagPattern();
}
