package course;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

/**
 * Reads one hex-encoded record value per line ("-" for a null value) on stdin and prints its tokens, hex-encoded, space-separated.
 *
 * <p>The tests compare this with Python's ``tokens_with_controls`` on any bytes, line breaks included.
 */
public final class TokenizeLines {
  private TokenizeLines() {}

  public static void main(String[] args) throws Exception {
    HexFormat hex = HexFormat.of();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.US_ASCII));
    StringBuilder out = new StringBuilder();
    String line;
    while ((line = in.readLine()) != null) {
      String[] tokens = Tokens.withControls(line.equals("-") ? null : hex.parseHex(line));
      for (int i = 0; i < tokens.length; i++) {
        out.append(i == 0 ? "" : " ").append(hex.formatHex(tokens[i].getBytes(StandardCharsets.UTF_8)));
      }
      out.append('\n');
    }
    System.out.write(out.toString().getBytes(StandardCharsets.US_ASCII));
    System.out.flush();
  }
}
