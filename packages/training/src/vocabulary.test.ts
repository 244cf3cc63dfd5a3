import { MieConfigError, MieSerializationError, MieShapeError } from '@mie/core';
import { Vocabulary } from './vocabulary';

describe('Vocabulary', () => {
  const vocabulary = Vocabulary.fromTexts(['hello', 'world']);

  it('puts the special tokens first and the characters in code-point order', () => {
    expect(vocabulary.tokens).toEqual(['<pad>', '<bos>', '<eos>', '<unk>', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
    expect(vocabulary.size).toBe(11);
    expect([Vocabulary.PAD_ID, Vocabulary.BOS_ID, Vocabulary.EOS_ID, Vocabulary.UNK_ID]).toEqual([0, 1, 2, 3]);
    expect(vocabulary.idOf('h')).toBe(6);
    expect(vocabulary.tokenOf(6)).toBe('h');
  });

  it('encodes and decodes round trip, with <bos>/<eos>', () => {
    const ids = vocabulary.encode('hello', { addBos: true, addEos: true });
    expect(ids).toEqual([1, 6, 5, 7, 7, 8, 2]);
    expect(vocabulary.decode([...ids, 0, 0])).toBe('hello');
    expect(vocabulary.decode([1, 6, 2, 8], { skipSpecial: false })).toBe('<bos>h<eos>o');
    expect(() => vocabulary.decode([11])).toThrow(MieShapeError);
  });

  it('names an unknown character, or maps it to <unk>', () => {
    expect(() => vocabulary.encode('hey')).toThrow(/character "y" \(U\+0079\) at position 2 is not in the vocabulary/);
    const lenient = Vocabulary.fromTexts(['hello'], { unknown: 'unk' });
    expect(lenient.encode('hey')).toEqual([lenient.idOf('h'), lenient.idOf('e'), Vocabulary.UNK_ID]);
    expect(lenient.decode(lenient.encode('hey'))).toBe('he<unk>');
  });

  it('handles token lists and characters outside the BMP', () => {
    const words = new Vocabulary({ tokens: ['the', 'cat'] });
    expect(words.encode(['the', 'cat'])).toEqual([4, 5]);
    expect(words.decode([4, 5], { separator: ' ' })).toBe('the cat');
    const emoji = Vocabulary.fromTexts(['a😀']);
    expect(emoji.encode('😀a')).toEqual([5, 4]);
  });

  it('round-trips through JSON and rejects malformed JSON', () => {
    const copy = Vocabulary.fromJSON(JSON.stringify(vocabulary));
    expect(copy.tokens).toEqual(vocabulary.tokens);
    expect(copy.config.unknown).toBe('error');
    expect(Vocabulary.fromJSON(vocabulary.toJSON()).encode('world')).toEqual(vocabulary.encode('world'));
    expect(() => Vocabulary.fromJSON('{')).toThrow(MieSerializationError);
    expect(() => Vocabulary.fromJSON({ ...vocabulary.toJSON(), tokens: ['a'] })).toThrow(MieSerializationError);
    expect(() => Vocabulary.fromJSON({ ...vocabulary.toJSON(), tokens: [...vocabulary.tokens, 'd'] })).toThrow(/twice/);
  });

  it('rejects duplicate or special tokens in the options', () => {
    expect(() => new Vocabulary({ tokens: ['a', 'a'] })).toThrow(MieConfigError);
    expect(() => new Vocabulary({ tokens: ['<pad>'] })).toThrow(MieConfigError);
    expect(() => new Vocabulary({ tokens: ['a'], unknown: 'skip' as never })).toThrow(MieConfigError);
  });
});
