using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace AgentHost.Llama.Models;

/// <summary>
/// The one Hugging Face API call AgentHost makes: a repository's file list (<c>GET ENDPOINT/api/models/OWNER/REPO</c>,
/// its <c>siblings[].rfilename</c>), to choose the file of <c>hf:OWNER/REPO:QUANT</c>. The endpoint may be a mirror.
/// </summary>
internal sealed class HuggingFaceHub(HttpClient httpClient, Uri endpoint, string? token)
{
    /// <summary>The public hub.</summary>
    public const string DefaultEndpoint = "https://huggingface.co";

    // A file list is a few kilobytes; a larger answer is not one.
    private const int MaxAnswerBytes = 16 << 20;

    /// <summary>The endpoint as a URL.</summary>
    /// <exception cref="AgentHostException"><see cref="ErrorKind.InvalidArgument"/> naming the configuration key.</exception>
    public static Uri ParseEndpoint(string? value)
    {
        var text = string.IsNullOrWhiteSpace(value) ? DefaultEndpoint : value.Trim();
        if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps)
            || !string.IsNullOrEmpty(url.Query) || !string.IsNullOrEmpty(url.Fragment))
        {
            throw new AgentHostException(ErrorKind.InvalidArgument,
                $"{AgentHostOptions.SectionName}:HuggingFaceEndpoint '{value}' is not an absolute http or https URL (default {DefaultEndpoint}).");
        }
        return url;
    }

    /// <summary>
    /// Whether a request to <paramref name="url"/> may carry the Hugging Face token: https on huggingface.co (or a
    /// subdomain), or the configured endpoint itself (same scheme, host and port), never anywhere else.
    /// </summary>
    public static bool SendsTokenTo(Uri url, Uri endpoint) =>
        (url.Scheme == Uri.UriSchemeHttps
            && (url.Host.Equals("huggingface.co", StringComparison.OrdinalIgnoreCase) || url.Host.EndsWith(".huggingface.co", StringComparison.OrdinalIgnoreCase)))
        || (url.Scheme == endpoint.Scheme && url.Port == endpoint.Port && url.Host.Equals(endpoint.Host, StringComparison.OrdinalIgnoreCase));

    /// <summary>The file of a reference: its own, else the one its quantisation chooses from the repository's file list.</summary>
    /// <exception cref="AgentHostException">
    /// <see cref="ErrorKind.ModelNotFound"/> for no such repository or no (or several) matching files;
    /// <see cref="ErrorKind.DownloadFailed"/> for refused access (gated or private: HF_TOKEN), a network failure or an answer that is no file list.
    /// </exception>
    public async Task<HuggingFaceReference> ChooseFileAsync(HuggingFaceReference reference, CancellationToken cancellationToken)
        => reference.File is not null ? reference : reference.Choose(await ListFilesAsync(reference, cancellationToken).ConfigureAwait(false));

    /// <summary>The paths of every file in the repository.</summary>
    public async Task<IReadOnlyList<string>> ListFilesAsync(HuggingFaceReference reference, CancellationToken cancellationToken)
    {
        var url = new Uri(new Uri(endpoint.AbsoluteUri.TrimEnd('/') + "/"), $"api/models/{Uri.EscapeDataString(reference.Owner)}/{Uri.EscapeDataString(reference.Repository)}");
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        if (token is { Length: > 0 } && SendsTokenTo(url, endpoint))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);

        byte[] body;
        try
        {
            using var response = await httpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw StatusError(reference, url, response);
            body = await ReadBoundedAsync(response, cancellationToken).ConfigureAwait(false)
                ?? throw NotAFileList(reference, url, $"the answer is over {MaxAnswerBytes >> 20} MiB");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed, $"{reference}: {url} did not answer within {httpClient.Timeout.TotalSeconds:0.#} s.");
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            throw new AgentHostException(ErrorKind.DownloadFailed, $"{reference}: cannot reach {url} ({ex.Message.Trim().TrimEnd('.')}).", ex);
        }

        try
        {
            using var json = JsonDocument.Parse(body);
            if (!json.RootElement.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
                throw NotAFileList(reference, url, "it has no 'siblings' array");
            var files = new List<string>();
            foreach (var sibling in siblings.EnumerateArray())
            {
                if (sibling.ValueKind == JsonValueKind.Object && sibling.TryGetProperty("rfilename", out var name) && name.ValueKind == JsonValueKind.String)
                    files.Add(name.GetString()!);
            }
            return files;
        }
        catch (JsonException)
        {
            throw NotAFileList(reference, url, "it is not JSON");
        }
    }

    private static async Task<byte[]?> ReadBoundedAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.Content.Headers.ContentLength > MaxAnswerBytes)
            return null;
        var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var buffer = new MemoryStream();
            var chunk = new byte[1 << 16];
            int read;
            while ((read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + read > MaxAnswerBytes)
                    return null;
                buffer.Write(chunk, 0, read);
            }
            return buffer.ToArray();
        }
    }

    private static AgentHostException StatusError(HuggingFaceReference reference, Uri url, HttpResponseMessage response)
    {
        var code = (int)response.StatusCode;
        var status = string.IsNullOrWhiteSpace(response.ReasonPhrase) ? $"HTTP {code}" : $"HTTP {code} {response.ReasonPhrase}";
        return response.StatusCode switch
        {
            // The hub answers 401 for a private repository and, without a token, for one that does not exist.
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => new AgentHostException(ErrorKind.DownloadFailed,
                $"{reference}: {url} refused access ({status}); the repository may be gated or private (accept its licence on its page and set HF_TOKEN to an access token that may read it), or it may not exist."),
            HttpStatusCode.NotFound => new AgentHostException(ErrorKind.ModelNotFound,
                $"{reference}: there is no repository {reference.RepositoryId} at {url.GetLeftPart(UriPartial.Authority)} ({status})."),
            _ => new AgentHostException(ErrorKind.DownloadFailed, $"{reference}: listing the repository's files at {url} failed ({status})."),
        };
    }

    private static AgentHostException NotAFileList(HuggingFaceReference reference, Uri url, string why)
        => new(ErrorKind.DownloadFailed, $"{reference}: {url} did not answer with a repository's file list ({why}); check AgentHost:HuggingFaceEndpoint.");
}
