package course;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system, setting permissions through Java instead of a {@code chmod} process.
 *
 * <p>Without Hadoop's native library (pip's pyspark has none), {@link RawLocalFileSystem} forks
 * {@code chmod} for every file it creates; Spark's checkpoint and state store create several files
 * per micro-batch, so each batch paid for a handful of processes. Spark uses this class for
 * {@code file:} paths only when the course's jar is on its classpath.
 */
public class LocalFilesWithoutForks extends RawLocalFileSystem {
  @Override
  public void setPermission(Path path, FsPermission permission) throws IOException {
    String mode =
        permission.getUserAction().SYMBOL
            + permission.getGroupAction().SYMBOL
            + permission.getOtherAction().SYMBOL;
    Files.setPosixFilePermissions(pathToFile(path).toPath(), PosixFilePermissions.fromString(mode));
  }
}
