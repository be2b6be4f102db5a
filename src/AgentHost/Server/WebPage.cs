namespace AgentHost.Server;

/// <summary>
/// The chat and inspector page at <c>/</c>: three static files embedded in the app (no CDN, fonts or scripts from
/// elsewhere), answered with a content security policy that allows only this origin's scripts, styles and
/// connections, and no framing. The page talks to the same endpoints as any client, under the same rules.
/// </summary>
internal static class WebPage
{
    private static readonly Dictionary<string, (string Resource, string ContentType)> _files = new(StringComparer.Ordinal)
    {
        ["/"] = ("index.html", "text/html; charset=utf-8"),
        ["/ui/app.js"] = ("app.js", "text/javascript; charset=utf-8"),
        ["/ui/app.css"] = ("app.css", "text/css; charset=utf-8"),
    };

    private const string Policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

    private static readonly Lazy<string> _stylesheet = new(() => System.Text.Encoding.UTF8.GetString(Load("app.css")));

    /// <summary>The page's stylesheet, which the analysis reports inline so that they look like the page (light and dark).</summary>
    public static string Stylesheet => _stylesheet.Value;

    /// <summary>Whether the request reads one of the page's files (they need no API key: the page asks for it).</summary>
    public static bool IsPageFile(HttpRequest request)
        => (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)) && _files.ContainsKey(request.Path.Value ?? "");

    public static void Map(WebApplication app)
    {
        foreach (var (path, (resource, contentType)) in _files)
        {
            var bytes = Load(resource);
            app.MapGet(path, (HttpContext context) =>
            {
                var headers = context.Response.Headers;
                headers.ContentSecurityPolicy = Policy;
                headers.XContentTypeOptions = "nosniff";
                headers.XFrameOptions = "DENY";
                headers["Referrer-Policy"] = "no-referrer";
                headers.CacheControl = "no-cache";
                return Results.Bytes(bytes, contentType);
            });
        }
    }

    private static byte[] Load(string name)
    {
        using var stream = typeof(WebPage).Assembly.GetManifestResourceStream($"AgentHost.Web.{name}")
            ?? throw new InvalidOperationException($"The web page's file {name} is not embedded in the app.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
