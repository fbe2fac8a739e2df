package course;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The course's one tokenizing rule (helpers/text.py), for the JVM engines.
 *
 * <p>Every Unicode fact it needs (NFC data, lower-case mappings, which characters make words) comes from
 * the table that Python wrote into this jar, never from the JVM's own Unicode version: Java 17 knows
 * Unicode 13 while Python 3.11 knows 14, so only one source of truth keeps the engines equal to the
 * ledger on any text.
 */
public final class Tokens {
  public static final String RECORD = "\u0000record";
  public static final String SKIPPED = "\u0000skipped:";
  private static final String[] NULL = {RECORD, SKIPPED + "null"};
  private static final String[] EMPTY = {RECORD, SKIPPED + "empty"};
  private static final String[] NOT_UTF8 = {RECORD, SKIPPED + "not-utf8"};

  private static final BitSet WORD = new BitSet(0x110000);
  private static final Map<Integer, int[]> LOWER = new HashMap<>();
  private static final Map<Integer, int[]> DECOMPOSE = new HashMap<>();
  private static final Map<Integer, Integer> COMBINING = new HashMap<>();
  private static final Map<Long, Integer> COMPOSE = new HashMap<>();

  static {
    try (InputStream in = Tokens.class.getResourceAsStream("/course/unicode.tsv")) {
      if (in == null) {
        throw new IllegalStateException("course/unicode.tsv is missing from the tokenizer jar");
      }
      BufferedReader reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
      String line;
      while ((line = reader.readLine()) != null) {
        String[] f = line.split(" ");
        switch (f[0]) {
          case "W" -> WORD.set(hex(f[1]), hex(f[2]) + 1);
          case "L" -> LOWER.put(hex(f[1]), hexes(f, 2));
          case "D" -> DECOMPOSE.put(hex(f[1]), hexes(f, 2));
          case "C" -> COMBINING.put(hex(f[1]), hex(f[2]));
          case "P" -> COMPOSE.put(pair(hex(f[1]), hex(f[2])), hex(f[3]));
          default -> { }
        }
      }
    } catch (IOException error) {
      throw new IllegalStateException("cannot read course/unicode.tsv", error);
    }
  }

  private Tokens() {}

  private static int hex(String text) {
    return Integer.parseInt(text, 16);
  }

  private static int[] hexes(String[] fields, int from) {
    int[] out = new int[fields.length - from];
    for (int i = from; i < fields.length; i++) {
      out[i - from] = hex(fields[i]);
    }
    return out;
  }

  private static long pair(int first, int second) {
    return ((long) first << 21) | second;
  }

  /** A record's words plus control keys (one RECORD, or RECORD and the reason it was skipped). */
  public static String[] withControls(byte[] value) {
    if (value == null) {
      return NULL;
    }
    if (value.length == 0) {
      return EMPTY;
    }
    List<String> out = new ArrayList<>();
    out.add(RECORD);
    if (isAscii(value)) {
      asciiWords(value, out);
    } else {
      String text;
      try {
        text = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT)
            .decode(ByteBuffer.wrap(value))
            .toString();
      } catch (CharacterCodingException error) {
        return NOT_UTF8;
      }
      words(text, out);
    }
    return out.toArray(new String[0]);
  }

  /** The words of ``text``, as Python's ``tokenize()`` gives them. */
  public static List<String> tokenize(String text) {
    List<String> out = new ArrayList<>();
    words(text, out);
    return out;
  }

  private static boolean isAscii(byte[] value) {
    for (byte b : value) {
      if (b < 0) {
        return false;
      }
    }
    return true;
  }

  private static boolean isAsciiWord(int b) {
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_';
  }

  private static void asciiWords(byte[] value, List<String> out) {
    int start = -1;
    for (int i = 0; i <= value.length; i++) {
      boolean word = i < value.length && isAsciiWord(value[i]);
      if (word && start < 0) {
        start = i;
      } else if (!word && start >= 0) {
        char[] chars = new char[i - start];
        for (int j = start; j < i; j++) {
          int b = value[j];
          chars[j - start] = (char) (b >= 'A' && b <= 'Z' ? b + 32 : b);
        }
        out.add(new String(chars));
        start = -1;
      }
    }
  }

  private static void words(String text, List<String> out) {
    int[] lowered = lower(nfc(text.codePoints().toArray()));
    int start = -1;
    for (int i = 0; i <= lowered.length; i++) {
      boolean word = i < lowered.length && WORD.get(lowered[i]);
      if (word && start < 0) {
        start = i;
      } else if (!word && start >= 0) {
        out.add(new String(lowered, start, i - start));
        start = -1;
      }
    }
  }

  private static int[] lower(int[] cps) {
    int[] out = new int[cps.length * 3];
    int n = 0;
    for (int cp : cps) {
      int[] mapped = LOWER.get(cp);
      if (mapped == null) {
        out[n++] = cp;
      } else {
        for (int m : mapped) {
          out[n++] = m;
        }
      }
    }
    return java.util.Arrays.copyOf(out, n);
  }

  private static int ccc(int cp) {
    Integer value = COMBINING.get(cp);
    return value == null ? 0 : value;
  }

  /** Canonical decomposition, canonical ordering, canonical composition (UAX #15). */
  static int[] nfc(int[] cps) {
    int[] buf = new int[cps.length * 4 + 4];
    int n = 0;
    for (int cp : cps) {
      int[] d = DECOMPOSE.get(cp);
      if (d == null) {
        if (n == buf.length) {
          buf = java.util.Arrays.copyOf(buf, n * 2);
        }
        buf[n++] = cp;
      } else {
        if (n + d.length > buf.length) {
          buf = java.util.Arrays.copyOf(buf, (n + d.length) * 2);
        }
        for (int x : d) {
          buf[n++] = x;
        }
      }
    }
    for (int i = 1; i < n; i++) { // a stable sort of each run of non-starters by combining class
      int c = ccc(buf[i]);
      if (c == 0) {
        continue;
      }
      int j = i;
      while (j > 0 && ccc(buf[j - 1]) > c) {
        int t = buf[j];
        buf[j] = buf[j - 1];
        buf[j - 1] = t;
        j--;
      }
    }
    if (n == 0) {
      return new int[0];
    }
    int starterPos = 0;
    int starter = buf[0];
    int lastClass = ccc(starter) == 0 ? 0 : 256;
    int out = 1;
    for (int i = 1; i < n; i++) {
      int ch = buf[i];
      int chClass = ccc(ch);
      Integer composite = lastClass == 256 ? null : COMPOSE.get(pair(starter, ch));
      if (composite != null && (lastClass < chClass || lastClass == 0)) {
        buf[starterPos] = composite;
        starter = composite;
      } else {
        if (chClass == 0) {
          starterPos = out;
          starter = ch;
        }
        lastClass = chClass;
        buf[out++] = ch;
      }
    }
    return java.util.Arrays.copyOf(buf, out);
  }
}
