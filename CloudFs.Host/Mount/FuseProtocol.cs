// The parts of the FUSE kernel protocol (linux/fuse.h, 7.31) a directory of symbolic links needs: requests are an
// fuse_in_header (40 bytes) and an opcode's argument; replies an fuse_out_header (16 bytes: length, -errno, unique)
// and the opcode's answer. Little-endian, as the kernel lays its structs out on this machine.
namespace CloudFs.Host.Mount;

internal static class FuseProtocol
{
    public const uint Major = 7;
    public const uint Minor = 31;
    public const int InHeaderSize = 40;
    public const int OutHeaderSize = 16;
    public const ulong RootNode = 1;

    public const uint Lookup = 1;
    public const uint Forget = 2;
    public const uint GetAttr = 3;
    public const uint ReadLink = 5;
    public const uint StatFs = 17;
    public const uint Init = 26;
    public const uint OpenDir = 27;
    public const uint ReadDir = 28;
    public const uint ReleaseDir = 29;
    public const uint FsyncDir = 30;
    public const uint Access = 34;
    public const uint Interrupt = 36;
    public const uint Destroy = 38;
    public const uint BatchForget = 42;

    public const int ENoEnt = 2;
    public const int EIo = 5;
    public const int EBusy = 16;
    public const int ENotDir = 20;
    public const int EInval = 22;
    public const int ENoSys = 38;

    public const uint ModeDirectory = 0x4000;
    public const uint ModeSymlink = 0xA000;
    public const uint DirentTypeDirectory = 4;
    public const uint DirentTypeSymlink = 10;

    /// <summary>fuse_attr: 88 bytes.</summary>
    public const int AttrSize = 88;
    /// <summary>fuse_entry_out: nodeid, generation, entry_valid, attr_valid, their nanoseconds, then fuse_attr.</summary>
    public const int EntryOutSize = 40 + AttrSize;
    /// <summary>fuse_attr_out: attr_valid, its nanoseconds, a pad, then fuse_attr.</summary>
    public const int AttrOutSize = 16 + AttrSize;
    /// <summary>fuse_init_out as of 7.23 and later.</summary>
    public const int InitOutSize = 64;
    public const int OpenOutSize = 16;
    /// <summary>fuse_kstatfs.</summary>
    public const int StatFsOutSize = 80;
}
