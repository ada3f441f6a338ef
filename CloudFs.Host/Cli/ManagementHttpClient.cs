// The CLI's side of the management API (ManagementRoutes on the node): one HTTP request per command to the first
// contact that answers, JSON in and out (ManagementJson), a refusal's one-line reason as a CliException. A command is
// a path and a record type here; no actor system, no cluster client.
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace CloudFs.Host.Cli;

internal sealed class ManagementHttpClient : IDisposable
{
    private readonly IReadOnlyList<NodeContact> _contacts;
    private readonly string? _tls;
    private HttpCliClient? _client;

    private ManagementHttpClient(IReadOnlyList<NodeContact> contacts, string? tls)
    {
        _contacts = contacts;
        _tls = tls;
    }

    /// <summary>Reads the --tls directory at once (a bad one is refused before anything is sent).</summary>
    public static ManagementHttpClient Create(IReadOnlyList<NodeContact> contacts, string? tlsDirectory)
    {
        var client = new ManagementHttpClient(contacts, tlsDirectory);
        client._client = HttpCliClient.Create(contacts[0], tlsDirectory, streaming: true);
        return client;
    }

    public async Task<T> GetAsync<T>(string path, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Get, path, null, ct);
        return await ReadAsync<T>(response, ct);
    }

    public async Task<T> PostAsync<T>(string path, object? body, CancellationToken ct)
    {
        using var response = await SendAsync(HttpMethod.Post, path, body, ct);
        return await ReadAsync<T>(response, ct);
    }

    /// <summary>A successful response whose body the caller reads (and disposes); a refusal is thrown as its reason.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body, CancellationToken ct)
    {
        for (var i = 0; ; i++)
        {
            var client = _client ??= HttpCliClient.Create(_contacts[i], _tls, streaming: true);
            using var request = new HttpRequestMessage(method, client.For(path));
            if (body is not null)
                request.Content = new StringContent(JsonSerializer.Serialize(body, ManagementJson.Options), Encoding.UTF8, ManagementJson.MediaType);
            HttpResponseMessage response;
            try
            {
                response = await client.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
            }
            catch (Exception e) when (Unreachable(e, ct) is { } why)
            {
                // The next contact, if any: the same question to another node of the cluster.
                _client.Dispose();
                _client = null;
                if (i + 1 < _contacts.Count) continue;
                var tried = _contacts.Count == 1 ? $"the node at {_contacts[0]}" : $"any of {string.Join(", ", _contacts)}";
                throw new CliException($"cannot reach {tried} ({why}); is `cloudfs node` running there (--contact HOST[:HTTP-PORT], or ${NodeContact.Variable})?");
            }
            if (response.IsSuccessStatusCode) return response;
            using (response)
            {
                var reason = (await response.Content.ReadAsStringAsync(ct)).Trim();
                throw new CliException(reason.Length == 0 ? $"the node answered {(int)response.StatusCode} {response.ReasonPhrase}" : reason.TrimEnd('.'));
            }
        }
    }

    /// <summary>Why a request reached no node (refused, no such host, no answer in time); null for other failures.</summary>
    private static string? Unreachable(Exception e, CancellationToken ct) => e switch
    {
        HttpRequestException { InnerException: SocketException s } => s.SocketErrorCode switch
        {
            SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData => "no such host",
            _ => s.Message.ToLowerInvariant(),
        },
        HttpRequestException { InnerException: TimeoutException } or OperationCanceledException when !ct.IsCancellationRequested =>
            $"no answer to the connection within {HttpCliClient.ConnectTimeout.TotalSeconds:0.#} s",
        _ => null,
    };

    /// <summary>The JSON body of a successful response from <see cref="SendAsync"/>.</summary>
    public static async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken ct)
    {
        await using var body = await response.Content.ReadAsStreamAsync(ct);
        return await JsonSerializer.DeserializeAsync<T>(body, ManagementJson.Options, ct)
               ?? throw new CliException($"the node answered {typeof(T).Name} with an empty body");
    }

    public void Dispose() => _client?.Dispose();
}
