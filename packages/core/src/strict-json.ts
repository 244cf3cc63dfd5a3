/**
 * A strict JSON parser for untrusted headers: the full RFC 8259 grammar, with duplicate object
 * keys and deep nesting rejected instead of silently resolved (`JSON.parse` keeps the last of two
 * equal keys, so two readers of the same file could disagree about what it says).
 */

import { MieSerializationError, describeValue } from './errors';

/** Deepest nesting of objects and arrays that {@link parseStrictJson} accepts. */
export const STRICT_JSON_MAX_DEPTH = 64;

/** Raised by {@link parseStrictJson} for text that is not strict JSON. */
export class StrictJsonError extends MieSerializationError {
  /** Index (in UTF-16 code units) into the parsed text where the problem was found. */
  readonly position: number;
  /** What was wrong, without the position: e.g. `duplicate key "a"`. */
  readonly reason: string;

  constructor(reason: string, position: number) {
    super(`parseStrictJson: ${reason} at position ${position}.`);
    this.reason = reason;
    this.position = position;
  }
}

/**
 * Parses one JSON text (RFC 8259) like `JSON.parse`, but throws a {@link StrictJsonError}
 * for a duplicate key in any object (keys compared after unescaping), for nesting deeper than
 * {@link STRICT_JSON_MAX_DEPTH}, and for anything outside the grammar. Objects come back as
 * ordinary objects whose keys (`"__proto__"` included) are own data properties, exactly as
 * `JSON.parse` builds them; arrays, strings, numbers, booleans and null as usual.
 */
export function parseStrictJson(text: string): unknown {
  if (typeof text !== 'string') throw new StrictJsonError(`input must be a string, received ${describeValue(text)}`, 0);
  return new StrictJsonParser(text).parseDocument();
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

const SIMPLE_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x22, '"'],
  [0x5c, '\\'],
  [0x2f, '/'],
  [0x62, '\b'],
  [0x66, '\f'],
  [0x6e, '\n'],
  [0x72, '\r'],
  [0x74, '\t'],
]);

/** A run of string characters that need no attention (no quote, backslash or control character). Sticky. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what must stop the run
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;

function isDigit(code: number): boolean {
  return code >= ZERO && code <= NINE;
}

function isHexDigit(code: number): boolean {
  return isDigit(code) || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}

class StrictJsonParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parseDocument(): unknown {
    this.skipWhitespace();
    const value = this.parseValue(0);
    this.skipWhitespace();
    if (this.pos < this.text.length) this.fail(`unexpected ${this.describeCurrent()} after the JSON value`);
    return value;
  }

  private parseValue(depth: number): unknown {
    const code = this.text.charCodeAt(this.pos);
    if (code === OPEN_BRACE) return this.parseObject(depth + 1);
    if (code === OPEN_BRACKET) return this.parseArray(depth + 1);
    if (code === QUOTE) return this.parseString();
    if (code === MINUS || isDigit(code)) return this.parseNumber();
    if (this.text.startsWith('true', this.pos)) return this.literal(4, true);
    if (this.text.startsWith('false', this.pos)) return this.literal(5, false);
    if (this.text.startsWith('null', this.pos)) return this.literal(4, null);
    return this.fail(`expected a JSON value, found ${this.describeCurrent()}`);
  }

  private literal<T>(length: number, value: T): T {
    this.pos += length;
    return value;
  }

  private parseObject(depth: number): Record<string, unknown> {
    this.checkDepth(depth);
    this.pos++;
    const result: Record<string, unknown> = {};
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === CLOSE_BRACE) {
      this.pos++;
      return result;
    }
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== QUOTE) this.fail(`expected a string key, found ${this.describeCurrent()}`);
      const keyPosition = this.pos;
      const key = this.parseString();
      if (Object.prototype.hasOwnProperty.call(result, key)) {
        this.fail(`duplicate key ${describeValue(key)}`, keyPosition);
      }
      this.skipWhitespace();
      if (this.text.charCodeAt(this.pos) !== COLON) this.fail(`expected ':' after an object key, found ${this.describeCurrent()}`);
      this.pos++;
      this.skipWhitespace();
      const value = this.parseValue(depth);
      // Plain assignment would treat "__proto__" as the prototype setter.
      Object.defineProperty(result, key, { value, writable: true, enumerable: true, configurable: true });
      this.skipWhitespace();
      const code = this.text.charCodeAt(this.pos);
      if (code === CLOSE_BRACE) {
        this.pos++;
        return result;
      }
      if (code !== COMMA) this.fail(`expected ',' or '}' in an object, found ${this.describeCurrent()}`);
      this.pos++;
      this.skipWhitespace();
    }
  }

  private parseArray(depth: number): unknown[] {
    this.checkDepth(depth);
    this.pos++;
    const result: unknown[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.pos) === CLOSE_BRACKET) {
      this.pos++;
      return result;
    }
    for (;;) {
      result.push(this.parseValue(depth));
      this.skipWhitespace();
      const code = this.text.charCodeAt(this.pos);
      if (code === CLOSE_BRACKET) {
        this.pos++;
        return result;
      }
      if (code !== COMMA) this.fail(`expected ',' or ']' in an array, found ${this.describeCurrent()}`);
      this.pos++;
      this.skipWhitespace();
    }
  }

  private parseString(): string {
    const start = this.pos;
    this.pos++;
    let result = '';
    let chunkStart = this.pos;
    for (;;) {
      const code = this.text.charCodeAt(this.pos);
      if (Number.isNaN(code)) this.fail('unterminated string', start);
      if (code === QUOTE) {
        result += this.text.slice(chunkStart, this.pos);
        this.pos++;
        return result;
      }
      if (code === BACKSLASH) {
        result += this.text.slice(chunkStart, this.pos);
        result += this.parseEscape();
        chunkStart = this.pos;
      } else if (code < 0x20) {
        this.fail(`unescaped control character U+${code.toString(16).padStart(4, '0')} in a string`);
      } else {
        // Skip the run of plain characters in one native regex step: a character loop costs
        // seconds on a multi-megabyte header string (a hostile file's, or a large metadata value).
        PLAIN_RUN.lastIndex = this.pos + 1;
        PLAIN_RUN.test(this.text);
        this.pos = PLAIN_RUN.lastIndex;
      }
    }
  }

  private parseEscape(): string {
    const escapePosition = this.pos;
    const code = this.text.charCodeAt(this.pos + 1);
    const simple = SIMPLE_ESCAPES.get(code);
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    if (code === 0x75) {
      const hex = this.text.slice(this.pos + 2, this.pos + 6);
      if (hex.length !== 4 || ![0, 1, 2, 3].every((i) => isHexDigit(hex.charCodeAt(i)))) {
        this.fail('\\u must be followed by four hex digits', escapePosition);
      }
      this.pos += 6;
      return String.fromCharCode(parseInt(hex, 16));
    }
    this.pos++;
    return this.fail(`invalid escape sequence '\\${this.text.charAt(this.pos)}'`, escapePosition);
  }

  private parseNumber(): number {
    const start = this.pos;
    if (this.text.charCodeAt(this.pos) === MINUS) this.pos++;
    const first = this.text.charCodeAt(this.pos);
    if (first === ZERO) {
      this.pos++;
    } else if (isDigit(first)) {
      this.skipDigits();
    } else {
      this.fail(`expected a digit, found ${this.describeCurrent()}`);
    }
    if (this.text.charCodeAt(this.pos) === DOT) {
      this.pos++;
      if (!isDigit(this.text.charCodeAt(this.pos))) this.fail(`expected a digit after '.', found ${this.describeCurrent()}`);
      this.skipDigits();
    }
    const exponent = this.text.charCodeAt(this.pos);
    if (exponent === 0x65 || exponent === 0x45) {
      this.pos++;
      const sign = this.text.charCodeAt(this.pos);
      if (sign === PLUS || sign === MINUS) this.pos++;
      if (!isDigit(this.text.charCodeAt(this.pos))) this.fail(`expected a digit in the exponent, found ${this.describeCurrent()}`);
      this.skipDigits();
    }
    return Number(this.text.slice(start, this.pos));
  }

  private skipDigits(): void {
    while (isDigit(this.text.charCodeAt(this.pos))) this.pos++;
  }

  private skipWhitespace(): void {
    for (;;) {
      const code = this.text.charCodeAt(this.pos);
      if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return;
      this.pos++;
    }
  }

  private checkDepth(depth: number): void {
    if (depth > STRICT_JSON_MAX_DEPTH) this.fail(`objects and arrays nested deeper than ${STRICT_JSON_MAX_DEPTH} levels`);
  }

  private describeCurrent(): string {
    if (this.pos >= this.text.length) return 'end of input';
    return describeValue(this.text.charAt(this.pos));
  }

  private fail(reason: string, position: number = this.pos): never {
    throw new StrictJsonError(reason, position);
  }
}
