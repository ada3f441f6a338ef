// A setting the node cannot run with: missing from the merged config (a bug: the built-in hocon/cloudfs.conf has
// every one) or a value of the wrong kind or range. One sentence naming the key (and the value); the node refuses to start.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Settings;

public sealed class SettingsException(string message) : CloudFsException(message);
