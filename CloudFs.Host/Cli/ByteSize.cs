// A size given on the command line, shown the way an operator writes it (`4G`, not 4294967296) in help and errors.
namespace CloudFs.Host.Cli;

internal readonly record struct ByteSize(long Bytes)
{
    public override string ToString() => SizeParser.Describe(Bytes);
}
