// Channels and memberships over HTTP: the four kinds (group, public, direct, department) and who may see,
// join and manage each; `general`; department channels following users as admins create, import and move
// them; names; rename and archive; the public directory; preferences; and every route's bad input.
import { beforeAll, describe, expect, it } from 'vitest';
import type { PublicChannel } from '../../src/services/channels.js';
import { useTestApp } from '../helper.js';
import {
  call,
  conversationOverrides,
  createChannel,
  expectError,
  expectValidation,
  ok,
  person,
  send,
  unique,
  uniqueEmail,
  type Person,
} from './fixtures.js';

interface MemberEntry {
  user_id: string;
  name: string;
  email: string;
  role: 'owner' | 'member';
  joined_at: string;
}

interface History {
  channel_id: string;
  messages: { id: string; content: string; seq: number }[];
  has_more: boolean;
  last_seq: number;
}

describe('channels', () => {
  const testApp = useTestApp(conversationOverrides());
  const app = () => testApp().app;

  let admin: Person;
  let moderator: Person;

  beforeAll(async () => {
    admin = await person(app(), { roles: ['admin'] });
    moderator = await person(app(), { roles: ['moderator'] });
  });

  // ---- small readers over the API ----

  const myChannels = async (who: Person, query?: Record<string, string>) =>
    (await ok<{ channels: PublicChannel[] }>(call(app(), who, 'GET', '/channels', undefined, query)))
      .channels;

  const getChannel = (who: Person, reference: string) =>
    ok<PublicChannel>(call(app(), who, 'GET', `/channels/${reference}`));

  /** Every member of a channel (pages through the member list). */
  const members = async (who: Person, reference: string): Promise<MemberEntry[]> => {
    const all: MemberEntry[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page += 1) {
      const body: { members: MemberEntry[]; next_cursor: string | null; has_more: boolean } = await ok(
        call(app(), who, 'GET', `/channels/${reference}/members`, undefined, {
          limit: '200',
          ...(cursor ? { cursor } : {}),
        }),
      );
      all.push(...body.members);
      if (!body.has_more) return all;
      cursor = body.next_cursor;
    }
    throw new Error('member list did not end');
  };
  const memberIds = async (who: Person, reference: string) =>
    (await members(who, reference)).map((member) => member.user_id).sort();

  const history = (who: Person, reference: string) =>
    ok<History>(call(app(), who, 'GET', `/channels/${reference}/messages`));

  const group = (owner: Person, others: Person[] = [], name = unique('grp')) =>
    createChannel(app(), owner, { name, kind: 'group', members: others.map((other) => other.id) });

  const publicChannel = (owner: Person = moderator, name = unique('pub')) =>
    createChannel(app(), owner, { name, kind: 'public' });

  const departmentChannelOf = async (who: Person, department: string) =>
    (await myChannels(who)).find(
      (channel) => channel.kind === 'department' && channel.department === department,
    );

  // ---- group ----

  describe('group channels', () => {
    it('the creator is owner, invited people are members, and outsiders cannot tell it exists', async () => {
      const [alice, bob, carol, outsider] = await Promise.all([
        person(app()),
        person(app()),
        person(app()),
        person(app()),
      ]);
      const name = unique('grp');
      const channel = await createChannel(app(), alice, {
        name,
        kind: 'group',
        members: [bob.id, carol.email],
        description: 'Planning the offsite',
      });
      expect(channel).toMatchObject({
        name,
        kind: 'group',
        description: 'Planning the offsite',
        created_by: alice.id,
        archived: false,
        last_seq: 0,
        unread_count: 0,
        membership: { role: 'owner', last_read_seq: 0, muted: false, hidden: false },
      });

      const asBob = await getChannel(bob, channel.id);
      expect(asBob).toMatchObject({ id: channel.id, member_count: 3, membership: { role: 'member' } });
      const roles = Object.fromEntries((await members(alice, channel.id)).map((m) => [m.user_id, m.role]));
      expect(roles).toEqual({ [alice.id]: 'owner', [bob.id]: 'member', [carol.id]: 'member' });
      expect((await myChannels(bob)).map((c) => c.id)).toContain(channel.id);
      expect((await myChannels(carol)).map((c) => c.id)).toContain(channel.id);

      await send(app(), alice, { channel_id: channel.id, content: 'secret plans' });
      expectError(await call(app(), outsider, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
      expectError(await call(app(), outsider, 'GET', `/channels/${name}`), 404, 'CHANNEL_NOT_FOUND');
      expectError(
        await call(app(), outsider, 'GET', `/channels/${channel.id}/messages`),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), outsider, 'GET', `/channels/${channel.id}/members`),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), outsider, 'POST', '/messages', { channel_id: channel.id, content: 'let me in' }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), outsider, 'POST', `/channels/${channel.id}/join`),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expect((await myChannels(outsider)).map((c) => c.id)).not.toContain(channel.id);
      expect((await history(alice, channel.id)).messages.map((m) => m.content)).toEqual(['secret plans']);
    });

    it('the owner adds (idempotently) and removes members; a plain member can do neither', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);

      expectError(
        await call(app(), bob, 'POST', `/channels/${channel.id}/members`, { members: [carol.id] }),
        403,
        'FORBIDDEN',
      );
      expectError(
        await call(app(), bob, 'DELETE', `/channels/${channel.id}/members/${alice.id}`),
        403,
        'FORBIDDEN',
      );
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, bob.id].sort());
      expectError(await call(app(), carol, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');

      expect(
        await ok(call(app(), alice, 'POST', `/channels/${channel.id}/members`, { members: [carol.email] })),
      ).toEqual({ channel_id: channel.id, added: [carol.id] });
      expect(
        await ok(
          call(app(), alice, 'POST', `/channels/${channel.id}/members`, { members: [carol.id, bob.id] }),
        ),
      ).toEqual({ channel_id: channel.id, added: [] });
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, bob.id, carol.id].sort());
      expect(await getChannel(carol, channel.id)).toMatchObject({ membership: { role: 'member' } });

      await ok(call(app(), alice, 'DELETE', `/channels/${channel.id}/members/${carol.id}`), 204);
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, bob.id].sort());
      expectError(await call(app(), carol, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
      expect((await myChannels(carol)).map((c) => c.id)).not.toContain(channel.id);
    });

    it('a moderator who is not a member sees any group and manages its members, but cannot read it', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);

      expect(await getChannel(moderator, channel.id)).toMatchObject({ id: channel.id, membership: null });
      expect(
        await ok(call(app(), moderator, 'POST', `/channels/${channel.id}/members`, { members: [carol.id] })),
      ).toEqual({ channel_id: channel.id, added: [carol.id] });
      await ok(call(app(), moderator, 'DELETE', `/channels/${channel.id}/members/${bob.id}`), 204);
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, carol.id].sort());
      expectError(
        await call(app(), moderator, 'GET', `/channels/${channel.id}/messages`),
        403,
        'NOT_CHANNEL_MEMBER',
      );
    });

    it('the last owner cannot leave (or be removed) while others remain; members leave freely', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob, carol]);

      expectError(
        await call(app(), alice, 'DELETE', `/channels/${channel.id}/members/${alice.id}`),
        409,
        'LAST_OWNER',
      );
      expectError(
        await call(app(), moderator, 'DELETE', `/channels/${channel.id}/members/${alice.id}`),
        409,
        'LAST_OWNER',
      );
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, bob.id, carol.id].sort());
      expect(await getChannel(alice, channel.id)).toMatchObject({ membership: { role: 'owner' } });

      await ok(call(app(), bob, 'DELETE', `/channels/${channel.id}/members/${bob.email}`), 204);
      expectError(await call(app(), bob, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, carol.id].sort());
    });

    it('pages through members by user id', async () => {
      const people = await Promise.all([person(app()), person(app()), person(app()), person(app())]);
      const [owner, ...others] = people;
      const channel = await group(owner!, others);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 10; page += 1) {
        const body = await ok<{ members: MemberEntry[]; next_cursor: string | null; has_more: boolean }>(
          call(app(), owner, 'GET', `/channels/${channel.id}/members`, undefined, {
            limit: '3',
            ...(cursor ? { cursor } : {}),
          }),
        );
        expect(body.members.length).toBeLessThanOrEqual(3);
        seen.push(...body.members.map((m) => m.user_id));
        if (!body.has_more) {
          expect(body.next_cursor).toBeNull();
          break;
        }
        cursor = body.next_cursor!;
      }
      expect(seen).toEqual(people.map((p) => p.id).sort());
    });
  });

  // ---- public ----

  describe('public channels', () => {
    it('members cannot create one; moderators and admins can, and become its owner', async () => {
      const member = await person(app());
      const name = unique('pub');
      expectError(await call(app(), member, 'POST', '/channels', { name, kind: 'public' }), 403, 'FORBIDDEN');
      expectError(await call(app(), member, 'GET', `/channels/${name}`), 404, 'CHANNEL_NOT_FOUND');
      expect((await myChannels(member)).map((c) => c.name)).not.toContain(name);

      const byModerator = await publicChannel(moderator);
      expect(byModerator).toMatchObject({ kind: 'public', membership: { role: 'owner' } });
      const byAdmin = await publicChannel(admin);
      expect(byAdmin).toMatchObject({ kind: 'public', membership: { role: 'owner' } });
      expect(await getChannel(member, byAdmin.id)).toMatchObject({ id: byAdmin.id, membership: null });
    });

    it('anyone sees it, but reads and posts only after joining; joining twice is the same; leaving undoes it', async () => {
      const bob = await person(app());
      const channel = await publicChannel();
      await send(app(), moderator, { channel_id: channel.id, content: 'welcome all' });

      expect(await getChannel(bob, channel.id)).toMatchObject({
        id: channel.id,
        membership: null,
        member_count: 1,
      });
      expectError(
        await call(app(), bob, 'GET', `/channels/${channel.id}/messages`),
        403,
        'NOT_CHANNEL_MEMBER',
      );
      expectError(
        await call(app(), bob, 'POST', '/messages', { channel_id: channel.id, content: 'hi before joining' }),
        403,
        'NOT_CHANNEL_MEMBER',
      );
      expect((await myChannels(bob)).map((c) => c.id)).not.toContain(channel.id);

      const joined = await ok<PublicChannel>(call(app(), bob, 'POST', `/channels/${channel.id}/join`));
      expect(joined).toMatchObject({ id: channel.id, membership: { role: 'member' } });
      const again = await ok<PublicChannel>(call(app(), bob, 'POST', `/channels/${channel.name}/join`));
      expect(again).toMatchObject({
        id: channel.id,
        membership: { role: 'member', joined_at: joined.membership!.joined_at },
      });
      expect(await memberIds(bob, channel.id)).toEqual([moderator.id, bob.id].sort());
      expect((await myChannels(bob)).map((c) => c.id)).toContain(channel.id);
      expect((await history(bob, channel.id)).messages.map((m) => m.content)).toEqual(['welcome all']);
      await send(app(), bob, { channel_id: channel.id, content: 'hello from bob' });

      await ok(call(app(), bob, 'DELETE', `/channels/${channel.id}/members/${bob.id}`), 204);
      expect(await getChannel(bob, channel.id)).toMatchObject({ membership: null, member_count: 1 });
      expectError(
        await call(app(), bob, 'GET', `/channels/${channel.id}/messages`),
        403,
        'NOT_CHANNEL_MEMBER',
      );
      expect((await myChannels(bob)).map((c) => c.id)).not.toContain(channel.id);
      expect((await history(moderator, channel.id)).messages.map((m) => m.content)).toEqual([
        'welcome all',
        'hello from bob',
      ]);
    });

    it('only public channels can be joined: a visible group channel refuses with 403', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      expectError(await call(app(), moderator, 'POST', `/channels/${channel.id}/join`), 403, 'FORBIDDEN');
      expect(await memberIds(alice, channel.id)).toEqual([alice.id]);
    });

    it('lists joinable public channels by name with cursor paging (no groups, no archived ones)', async () => {
      const viewer = await person(app());
      const prefix = unique('dir').toLowerCase();
      const a = await publicChannel(moderator, `${prefix}-a`);
      const b = await publicChannel(admin, `${prefix}-B`);
      const c = await publicChannel(moderator, `${prefix}-c`);
      const archived = await publicChannel(moderator, `${prefix}-d`);
      await ok(call(app(), moderator, 'DELETE', `/channels/${archived.id}`));
      const privateOne = await group(viewer, [], `${prefix}-e`);

      const seen: PublicChannel[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 500; page += 1) {
        const body = await ok<{ channels: PublicChannel[]; next_cursor: string | null; has_more: boolean }>(
          call(app(), viewer, 'GET', '/channels', undefined, {
            scope: 'public',
            limit: '2',
            ...(cursor ? { cursor } : {}),
          }),
        );
        expect(body.channels.length).toBeLessThanOrEqual(2);
        seen.push(...body.channels);
        if (!body.has_more) {
          expect(body.next_cursor).toBeNull();
          break;
        }
        expect(body.next_cursor).toEqual(expect.any(String));
        cursor = body.next_cursor!;
      }
      const ids = seen.map((channel) => channel.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(seen.every((channel) => channel.kind === 'public' && !channel.archived)).toBe(true);
      const names = seen.map((channel) => channel.name.toLowerCase());
      expect(names).toEqual([...names].sort());
      expect(
        seen.filter((channel) => channel.name.toLowerCase().startsWith(prefix)).map((ch) => ch.id),
      ).toEqual([a.id, b.id, c.id]);
      expect(ids).not.toContain(archived.id);
      expect(ids).not.toContain(privateOne.id);
      expect(seen.find((channel) => channel.id === a.id)?.membership).toBeNull();
      expect(seen.find((channel) => channel.name === 'general')?.membership).toMatchObject({
        role: 'member',
      });
    });
  });

  // ---- direct ----

  describe('direct channels', () => {
    it('one per pair: 201 the first time, then 200 with the same channel, whichever side asks', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const first = await ok<PublicChannel>(
        call(app(), alice, 'POST', '/channels', { kind: 'direct', members: [bob.id] }),
        201,
      );
      expect(first).toMatchObject({ kind: 'direct', membership: { role: 'member' } });
      expect([...(first.participants ?? [])].sort()).toEqual([alice.id, bob.id].sort());

      const again = await ok<PublicChannel>(
        call(app(), alice, 'POST', '/channels', { kind: 'direct', members: [bob.id] }),
        200,
      );
      expect(again.id).toBe(first.id);
      const fromBob = await ok<PublicChannel>(
        call(app(), bob, 'POST', '/channels', { kind: 'direct', members: [alice.email] }),
        200,
      );
      expect(fromBob.id).toBe(first.id);

      expect((await myChannels(alice)).filter((c) => c.kind === 'direct').map((c) => c.id)).toEqual([
        first.id,
      ]);
      expect((await myChannels(bob)).filter((c) => c.kind === 'direct').map((c) => c.id)).toEqual([first.id]);
      expect(await memberIds(bob, first.id)).toEqual([alice.id, bob.id].sort());
    });

    it('a direct message to someone reaches the same channel that POST /channels returns', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const message = await send(app(), bob, { recipient_id: alice.id, content: 'ping' });
      const channel = await ok<PublicChannel>(
        call(app(), alice, 'POST', '/channels', { kind: 'direct', members: [bob.id] }),
        200,
      );
      expect(channel.id).toBe(message.channel_id);
      expect((await history(alice, channel.id)).messages.map((m) => m.content)).toEqual(['ping']);
    });

    const refused: [string, (self: Person, a: Person, b: Person) => Record<string, unknown>][] = [
      ['no members', () => ({ kind: 'direct' })],
      ['an empty list', () => ({ kind: 'direct', members: [] })],
      ['only myself', (self) => ({ kind: 'direct', members: [self.id] })],
      ['only myself, by email', (self) => ({ kind: 'direct', members: [self.email] })],
      ['two other people', (_self, a, b) => ({ kind: 'direct', members: [a.id, b.id] })],
      ['an unknown user', () => ({ kind: 'direct', members: ['0123456789abcdef01234567'] })],
    ];
    it.each(refused)(
      'needs exactly one other person: %s is refused and nothing is created',
      async (_label, body) => {
        const [self, a, b] = await Promise.all([person(app()), person(app()), person(app())]);
        expectValidation(await call(app(), self, 'POST', '/channels', body(self, a, b)), 'members');
        expect((await myChannels(self)).filter((c) => c.kind === 'direct')).toEqual([]);
        expect((await myChannels(a)).filter((c) => c.kind === 'direct')).toEqual([]);
      },
    );

    it('only the two participants see it: a third user and even an admin get 404', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await createChannel(app(), alice, { kind: 'direct', members: [bob.id] });
      await send(app(), alice, { channel_id: channel.id, content: 'just us' });

      for (const outsider of [carol, admin, moderator]) {
        expectError(await call(app(), outsider, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
        expectError(
          await call(app(), outsider, 'GET', `/channels/${channel.name}`),
          404,
          'CHANNEL_NOT_FOUND',
        );
        expectError(
          await call(app(), outsider, 'GET', `/channels/${channel.id}/messages`),
          404,
          'CHANNEL_NOT_FOUND',
        );
        expectError(
          await call(app(), outsider, 'GET', `/channels/${channel.id}/members`),
          404,
          'CHANNEL_NOT_FOUND',
        );
        expectError(
          await call(app(), outsider, 'POST', `/channels/${channel.id}/join`),
          404,
          'CHANNEL_NOT_FOUND',
        );
      }
      expectError(await call(app(), admin, 'DELETE', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
      expect(await getChannel(bob, channel.id)).toMatchObject({ archived: false, member_count: 2 });
    });

    it('membership is managed by the server: nobody is added, removed or leaves', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await createChannel(app(), alice, { kind: 'direct', members: [bob.id] });

      expectError(
        await call(app(), alice, 'POST', `/channels/${channel.id}/members`, { members: [carol.id] }),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), alice, 'DELETE', `/channels/${channel.id}/members/${bob.id}`),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), bob, 'DELETE', `/channels/${channel.id}/members/${bob.id}`),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), alice, 'PATCH', `/channels/${channel.id}`, { description: 'ours' }),
        403,
        'FORBIDDEN',
      );
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, bob.id].sort());
      expectError(await call(app(), carol, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
    });
  });

  // ---- general ----

  describe('general', () => {
    it('exists, every user is in it, and nobody leaves, is removed or is added by hand', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const general = (await myChannels(alice)).find((channel) => channel.name === 'general');
      expect(general).toMatchObject({ kind: 'public', membership: { role: 'member' } });
      expect(await getChannel(bob, 'general')).toMatchObject({
        id: general!.id,
        membership: { role: 'member' },
      });
      expect(await getChannel(admin, 'GENERAL')).toMatchObject({ id: general!.id });

      expectError(
        await call(app(), alice, 'DELETE', `/channels/general/members/${alice.id}`),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), admin, 'DELETE', `/channels/${general!.id}/members/${bob.id}`),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), admin, 'POST', `/channels/${general!.id}/members`, { members: [bob.id] }),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), admin, 'PATCH', '/channels/general', { name: unique('gen') }),
        403,
        'FORBIDDEN',
      );
      expectError(await call(app(), admin, 'DELETE', '/channels/general'), 403, 'FORBIDDEN');

      const ids = await memberIds(admin, 'general');
      expect(ids).toContain(alice.id);
      expect(ids).toContain(bob.id);
      expect(await getChannel(alice, 'general')).toMatchObject({ name: 'general', archived: false });
    });
  });

  // ---- department ----

  describe('department channels', () => {
    it('a new user is a member of their department channel, with the others of that department', async () => {
      const department = `Research ${unique('d')}`;
      const [ada, ben, other] = await Promise.all([
        person(app(), { department }),
        person(app(), { department }),
        person(app(), { department: `Elsewhere ${unique('d')}` }),
      ]);
      const channel = await departmentChannelOf(ada, department);
      expect(channel).toMatchObject({ kind: 'department', department, membership: { role: 'member' } });
      expect(channel!.name).toMatch(/^dept-/);
      expect((await departmentChannelOf(ben, department))?.id).toBe(channel!.id);
      expect(await memberIds(ada, channel!.id)).toEqual([ada.id, ben.id].sort());
      expect(await departmentChannelOf(other, department)).toBeUndefined();
      expectError(await call(app(), other, 'GET', `/channels/${channel!.id}`), 404, 'CHANNEL_NOT_FOUND');

      expectError(
        await call(app(), ada, 'DELETE', `/channels/${channel!.id}/members/${ada.id}`),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), admin, 'POST', `/channels/${channel!.id}/members`, { members: [other.id] }),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expectError(
        await call(app(), admin, 'DELETE', `/channels/${channel!.id}/members/${ben.id}`),
        409,
        'MEMBERSHIP_MANAGED',
      );
      expect(await memberIds(ada, channel!.id)).toEqual([ada.id, ben.id].sort());
    });

    it('an admin moving a user to another department moves them between the department channels', async () => {
      const from = `From ${unique('d')}`;
      const to = `To ${unique('d')}`;
      const [mover, stays, waiting] = await Promise.all([
        person(app(), { department: from }),
        person(app(), { department: from }),
        person(app(), { department: to }),
      ]);
      const oldChannel = (await departmentChannelOf(stays, from))!;
      const newChannel = (await departmentChannelOf(waiting, to))!;
      expect(await memberIds(stays, oldChannel.id)).toEqual([mover.id, stays.id].sort());

      const moved = await ok(call(app(), admin, 'PATCH', `/admin/users/${mover.id}`, { department: to }));
      expect(moved).toMatchObject({ id: mover.id, department: to });

      const mine = await myChannels(mover);
      expect(mine.map((c) => c.id)).toContain(newChannel.id);
      expect(mine.map((c) => c.id)).not.toContain(oldChannel.id);
      expect(mine.some((c) => c.name === 'general')).toBe(true);
      expect(await memberIds(stays, oldChannel.id)).toEqual([stays.id]);
      expect(await memberIds(waiting, newChannel.id)).toEqual([mover.id, waiting.id].sort());
      expectError(await call(app(), mover, 'GET', `/channels/${oldChannel.id}`), 404, 'CHANNEL_NOT_FOUND');
    });

    it('a user created or imported by an admin lands in their department channel and in general', async () => {
      const department = `Imports ${unique('d')}`;
      const witness = await person(app(), { department });
      const channel = (await departmentChannelOf(witness, department))!;

      const created = await ok<{ id: string }>(
        call(app(), admin, 'POST', '/admin/users', {
          email: uniqueEmail(),
          name: 'Cleo Created',
          department,
        }),
        201,
      );
      const imported = await ok<{ rows: { outcome: string; user_id?: string }[] }>(
        call(app(), admin, 'POST', '/admin/users/import', {
          users: [{ email: uniqueEmail(), name: 'Ivo Imported', department }],
        }),
      );
      expect(imported.rows).toEqual([
        expect.objectContaining({ outcome: 'created', user_id: expect.any(String) }),
      ]);
      const importedId = imported.rows[0]!.user_id!;

      expect(await memberIds(witness, channel.id)).toEqual([witness.id, created.id, importedId].sort());
      const general = await memberIds(admin, 'general');
      expect(general).toContain(created.id);
      expect(general).toContain(importedId);
    });

    it('gets a channel of its own even when a group already holds the dept-… name', async () => {
      const slug = unique('d').toLowerCase();
      const squatter = await person(app());
      const taken = await group(squatter, [], `dept-${slug}`);
      const newcomer = await person(app(), { department: slug });

      const channel = await departmentChannelOf(newcomer, slug);
      expect(channel).toMatchObject({ kind: 'department', department: slug });
      expect(channel!.id).not.toBe(taken.id);
      expect(channel!.name).toMatch(new RegExp(`^dept-${slug}-`));
      expect(await memberIds(squatter, taken.id)).toEqual([squatter.id]);
    });

    it('only admins create one; it is empty until people of that department arrive, who then join it', async () => {
      const department = `Future ${unique('d')}`;
      const name = unique('future');
      const member = await person(app());
      for (const who of [member, moderator]) {
        expectError(
          await call(app(), who, 'POST', '/channels', { name, kind: 'department', department }),
          403,
          'FORBIDDEN',
        );
      }
      expectValidation(
        await call(app(), admin, 'POST', '/channels', {
          name,
          kind: 'department',
          department,
          members: [member.id],
        }),
        'members',
      );
      expectError(await call(app(), admin, 'GET', `/channels/${name}`), 404, 'CHANNEL_NOT_FOUND');

      const channel = await ok<PublicChannel>(
        call(app(), admin, 'POST', '/channels', { name, kind: 'department', department }),
        201,
      );
      expect(channel).toMatchObject({ name, kind: 'department', department, membership: null });
      expect(await memberIds(admin, channel.id)).toEqual([]);

      const arrival = await person(app(), { department });
      expect((await departmentChannelOf(arrival, department))?.id).toBe(channel.id);
      expect(await memberIds(admin, channel.id)).toEqual([arrival.id]);
    });

    it('someone who leaves a department is in none of its channels, even one an admin added by hand', async () => {
      const department = `Twice ${unique('d')}`;
      const mover = await person(app(), { department });
      const original = (await departmentChannelOf(mover, department))!;
      // A second channel for the same department: refusing it (409) or keeping it in sync both satisfy this test.
      const second = await call(app(), admin, 'POST', '/channels', {
        name: unique('twice'),
        kind: 'department',
        department,
      });
      expect([201, 409]).toContain(second.statusCode);

      await ok(
        call(app(), admin, 'PATCH', `/admin/users/${mover.id}`, { department: `Else ${unique('d')}` }),
      );
      const left = (await myChannels(mover)).filter(
        (c) => c.kind === 'department' && c.department === department,
      );
      expect(left.map((c) => c.name)).toEqual([]);
      expectError(await call(app(), mover, 'GET', `/channels/${original.id}`), 404, 'CHANNEL_NOT_FOUND');
    });
  });

  // ---- names ----

  describe('names', () => {
    it('are unique regardless of case, across kinds (including general)', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const name = `Alpha-${unique('n')}`;
      const first = await group(alice, [], name);
      for (const [who, body] of [
        [bob, { name: name.toUpperCase(), kind: 'group' }],
        [bob, { name: name.toLowerCase(), kind: 'group' }],
        [moderator, { name: name.toLowerCase(), kind: 'public' }],
        [bob, { name: 'GENERAL', kind: 'group' }],
      ] as const) {
        expectError(await call(app(), who, 'POST', '/channels', body), 409, 'CHANNEL_NAME_TAKEN');
      }
      expect((await myChannels(bob)).filter((c) => c.kind === 'group')).toEqual([]);
      expect(await getChannel(alice, name.toLowerCase())).toMatchObject({ id: first.id, name });
      expect(await memberIds(alice, first.id)).toEqual([alice.id]);
    });

    const invalid: [string, string][] = [
      ['spaces', 'two words'],
      ['an id-like value', 'abcdef0123456789abcdef01'],
      ['an upper-case id-like value', 'ABCDEF0123456789ABCDEF01'],
      ['more than 80 characters', 'x'.repeat(81)],
      ['an empty string', ''],
      ['only spaces', '   '],
      ['a leading dash', '-dash'],
      ['a slash', 'a/b'],
    ];
    it.each(invalid)('refuses a name with %s (400 naming name), storing nothing', async (_label, name) => {
      const alice = await person(app());
      const before = await myChannels(alice);
      expectValidation(await call(app(), alice, 'POST', '/channels', { name, kind: 'group' }), 'name');
      expect(await myChannels(alice)).toEqual(before);
    });

    it('a group or public channel without a name is refused', async () => {
      const alice = await person(app());
      const before = await myChannels(alice);
      expectValidation(await call(app(), alice, 'POST', '/channels', { kind: 'group' }), 'name');
      expectValidation(await call(app(), moderator, 'POST', '/channels', { kind: 'public' }), 'name');
      expect(await myChannels(alice)).toEqual(before);
    });

    it('a channel is addressable by its name (any case) as well as its id', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const name = `Named.${unique('n')}`;
      const channel = await group(alice, [bob], name);
      expect((await getChannel(bob, name)).id).toBe(channel.id);
      expect((await getChannel(bob, name.toLowerCase())).id).toBe(channel.id);

      await ok(call(app(), alice, 'POST', `/channels/${name}/members`, { members: [carol.id] }));
      const message = await send(app(), carol, { channel_id: name, content: 'by name' });
      expect(message.channel_id).toBe(channel.id);
      expect((await history(bob, name.toUpperCase())).messages.map((m) => m.content)).toEqual(['by name']);
      expect((await memberIds(bob, name)).length).toBe(3);
    });
  });

  // ---- PATCH / DELETE ----

  describe('rename and archive', () => {
    it('the owner renames and describes; the new name addresses it and the old one no longer does', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const oldName = unique('old');
      const newName = unique('new');
      const channel = await group(alice, [bob], oldName);

      const renamed = await ok<PublicChannel>(
        call(app(), alice, 'PATCH', `/channels/${channel.id}`, {
          name: newName,
          description: 'Now with a purpose',
        }),
      );
      expect(renamed).toMatchObject({ id: channel.id, name: newName, description: 'Now with a purpose' });
      expect(await getChannel(bob, newName)).toMatchObject({
        id: channel.id,
        description: 'Now with a purpose',
      });
      expectError(await call(app(), bob, 'GET', `/channels/${oldName}`), 404, 'CHANNEL_NOT_FOUND');

      const recased = await ok<PublicChannel>(
        call(app(), alice, 'PATCH', `/channels/${newName}`, {
          name: newName.toUpperCase(),
          description: null,
        }),
      );
      expect(recased).toMatchObject({ name: newName.toUpperCase(), description: null });
      // The old name is free again.
      await group(bob, [], oldName);
    });

    it('a plain member cannot rename or describe a group', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const name = unique('keep');
      const channel = await group(alice, [bob], name);
      expectError(
        await call(app(), bob, 'PATCH', `/channels/${channel.id}`, { name: unique('mine') }),
        403,
        'FORBIDDEN',
      );
      expectError(
        await call(app(), bob, 'PATCH', `/channels/${channel.id}`, { description: 'mine' }),
        403,
        'FORBIDDEN',
      );
      expect(await getChannel(alice, channel.id)).toMatchObject({ name, description: null });
    });

    it('renaming to a name already taken (in any case) is refused with 409 and changes nothing', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const name = unique('keep');
      const channel = await group(alice, [bob], name);
      const other = await group(bob, [], unique('other'));

      expectError(
        await call(app(), alice, 'PATCH', `/channels/${channel.id}`, { name: other.name.toUpperCase() }),
        409,
        'CHANNEL_NAME_TAKEN',
      );
      expectError(
        await call(app(), alice, 'PATCH', `/channels/${channel.id}`, { name: 'general' }),
        409,
        'CHANNEL_NAME_TAKEN',
      );
      expect(await getChannel(alice, channel.id)).toMatchObject({ name, description: null });
      expect(await getChannel(bob, other.id)).toMatchObject({ name: other.name });
    });

    it('an admin may rename any group; a moderator who does not own it may not', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      expectError(
        await call(app(), moderator, 'PATCH', `/channels/${channel.id}`, { description: 'mod was here' }),
        403,
        'FORBIDDEN',
      );
      const newName = unique('adm');
      expect(
        await ok(call(app(), admin, 'PATCH', `/channels/${channel.id}`, { name: newName })),
      ).toMatchObject({ name: newName, description: null });
      expect(await getChannel(alice, channel.id)).toMatchObject({ name: newName, description: null });
    });

    it('archiving keeps history readable, stops posting and hides the channel unless asked for', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      await send(app(), bob, { channel_id: channel.id, content: 'before the archive' });

      expectError(await call(app(), bob, 'DELETE', `/channels/${channel.id}`), 403, 'FORBIDDEN');
      expect(await getChannel(bob, channel.id)).toMatchObject({ archived: false });

      const archived = await ok<PublicChannel>(call(app(), alice, 'DELETE', `/channels/${channel.id}`));
      expect(archived).toMatchObject({ id: channel.id, archived: true, archived_at: expect.any(String) });
      const again = await ok<PublicChannel>(call(app(), alice, 'DELETE', `/channels/${channel.id}`));
      expect(again).toMatchObject({ archived: true, archived_at: archived.archived_at });

      expectError(
        await call(app(), bob, 'POST', '/messages', { channel_id: channel.id, content: 'too late' }),
        409,
        'CHANNEL_ARCHIVED',
      );
      expectError(
        await call(app(), alice, 'POST', `/channels/${channel.id}/members`, { members: [carol.id] }),
        409,
        'CHANNEL_ARCHIVED',
      );
      expectError(
        await call(app(), alice, 'PATCH', `/channels/${channel.id}`, { description: 'still here' }),
        409,
        'CHANNEL_ARCHIVED',
      );
      const readable = await history(bob, channel.id);
      expect(readable.messages.map((m) => m.content)).toEqual(['before the archive']);
      expect(await getChannel(bob, channel.id)).toMatchObject({ archived: true, description: null });
      expectError(await call(app(), carol, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');

      expect((await myChannels(bob)).map((c) => c.id)).not.toContain(channel.id);
      const withArchived = await myChannels(bob, { include_archived: 'true' });
      expect(withArchived.find((c) => c.id === channel.id)).toMatchObject({ archived: true });
      expect((await myChannels(bob, { include_archived: 'false' })).map((c) => c.id)).not.toContain(
        channel.id,
      );
    });

    it('an archived public channel leaves the directory and cannot be joined', async () => {
      const bob = await person(app());
      const channel = await publicChannel();
      await ok(call(app(), moderator, 'DELETE', `/channels/${channel.id}`));
      expectError(await call(app(), bob, 'POST', `/channels/${channel.id}/join`), 409, 'CHANNEL_ARCHIVED');
      expect(await getChannel(bob, channel.id)).toMatchObject({
        archived: true,
        membership: null,
        member_count: 1,
      });
    });
  });

  // ---- preferences ----

  describe('PUT /channels/:id/preferences', () => {
    it('mutes and hides a channel for me only', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice, [bob]);

      const muted = await ok<PublicChannel>(
        call(app(), bob, 'PUT', `/channels/${channel.id}/preferences`, { muted: true }),
      );
      expect(muted.membership).toMatchObject({ muted: true, hidden: false, role: 'member' });
      expect((await myChannels(bob)).find((c) => c.id === channel.id)?.membership).toMatchObject({
        muted: true,
        hidden: false,
      });
      expect((await getChannel(alice, channel.id)).membership).toMatchObject({ muted: false, hidden: false });

      const hidden = await ok<PublicChannel>(
        call(app(), bob, 'PUT', `/channels/${channel.id}/preferences`, { hidden: true, muted: false }),
      );
      expect(hidden.membership).toMatchObject({ muted: false, hidden: true });
      expect((await getChannel(bob, channel.id)).membership).toMatchObject({ muted: false, hidden: true });
    });

    it('refuses bad input and non-members, leaving the preferences as they were', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice);
      const open = await publicChannel();
      await ok(call(app(), alice, 'PUT', `/channels/${channel.id}/preferences`, { muted: true }));
      const url = `/channels/${channel.id}/preferences`;

      expectError(await call(app(), alice, 'PUT', url, {}), 400, 'VALIDATION_FAILED');
      expectValidation(await call(app(), alice, 'PUT', url, { muted: 'no' }), 'muted');
      expectValidation(await call(app(), alice, 'PUT', url, { muted: false, starred: true }), 'starred');
      expectError(await call(app(), bob, 'PUT', url, { muted: true }), 404, 'CHANNEL_NOT_FOUND');
      expectError(
        await call(app(), bob, 'PUT', `/channels/${open.id}/preferences`, { muted: true }),
        403,
        'NOT_CHANNEL_MEMBER',
      );
      expectError(
        await call(app(), alice, 'PUT', `/channels/${unique('nope')}/preferences`, { muted: true }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(await call(app(), undefined, 'PUT', url, { muted: false }), 401, 'UNAUTHORIZED');

      expect((await getChannel(alice, channel.id)).membership).toMatchObject({ muted: true, hidden: false });
      expect(await getChannel(bob, open.id)).toMatchObject({ membership: null });
    });
  });

  // ---- bad input on every route ----

  describe('bad input', () => {
    it('POST /channels: unknown fields, wrong types, unknown users and no token store nothing', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const before = await myChannels(alice);
      const name = unique('bad');
      const cases: [Record<string, unknown>, string][] = [
        [{ name, kind: 'group', private: true }, 'private'],
        [{ name, kind: 'secret' }, 'kind'],
        [{ name }, 'kind'],
        [{ name: 42, kind: 'group' }, 'name'],
        [{ name, kind: 'group', members: bob.id }, 'members'],
        [{ name, kind: 'group', members: [42] }, 'members'],
        [{ name, kind: 'group', description: 'x'.repeat(501) }, 'description'],
        [{ name, kind: 'group', members: ['0123456789abcdef01234567'] }, 'members.0'],
        [{ name, kind: 'group', members: [bob.id, 'nobody@example.com'] }, 'members.1'],
      ];
      for (const [body, field] of cases) {
        const response = await call(app(), alice, 'POST', '/channels', body);
        expectValidation(response, field);
      }
      expectError(
        await call(app(), undefined, 'POST', '/channels', { name, kind: 'group' }),
        401,
        'UNAUTHORIZED',
      );

      expect(await myChannels(alice)).toEqual(before);
      expect((await myChannels(bob)).map((c) => c.name)).not.toContain(name);
      expectError(await call(app(), admin, 'GET', `/channels/${name}`), 404, 'CHANNEL_NOT_FOUND');
    });

    it('POST /channels: an unknown member is named by position', async () => {
      const alice = await person(app());
      const response = await call(app(), alice, 'POST', '/channels', {
        name: unique('pos'),
        kind: 'group',
        members: ['0123456789abcdef01234567'],
      });
      const body = expectError(response, 400, 'VALIDATION_FAILED');
      expect(body.details).toEqual([expect.objectContaining({ path: 'members.0' })]);
    });

    it('GET /channels: bad query parameters and no token', async () => {
      const alice = await person(app());
      expectValidation(
        await call(app(), alice, 'GET', '/channels', undefined, { scope: 'everything' }),
        'scope',
      );
      expectValidation(
        await call(app(), alice, 'GET', '/channels', undefined, { include_archived: 'yes' }),
        'include_archived',
      );
      expectValidation(await call(app(), alice, 'GET', '/channels', undefined, { limit: '0' }), 'limit');
      expectValidation(await call(app(), alice, 'GET', '/channels', undefined, { sort: 'name' }), 'sort');
      expectError(await call(app(), undefined, 'GET', '/channels'), 401, 'UNAUTHORIZED');
    });

    it('GET /channels/:id and DELETE /channels/:id: unknown channels and no token', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      for (const reference of ['0123456789abcdef01234567', unique('missing')]) {
        expectError(await call(app(), alice, 'GET', `/channels/${reference}`), 404, 'CHANNEL_NOT_FOUND');
        expectError(await call(app(), alice, 'DELETE', `/channels/${reference}`), 404, 'CHANNEL_NOT_FOUND');
        expectError(
          await call(app(), alice, 'GET', `/channels/${reference}/messages`),
          404,
          'CHANNEL_NOT_FOUND',
        );
      }
      expectError(await call(app(), undefined, 'GET', `/channels/${channel.id}`), 401, 'UNAUTHORIZED');
      expectError(await call(app(), undefined, 'DELETE', `/channels/${channel.id}`), 401, 'UNAUTHORIZED');
      expect(await getChannel(alice, channel.id)).toMatchObject({ archived: false });
    });

    it('PATCH /channels/:id: unknown fields, wrong types, nothing to change, unknown channel, no token', async () => {
      const alice = await person(app());
      const name = unique('pt');
      const channel = await group(alice, [], name);
      const url = `/channels/${channel.id}`;
      expectValidation(await call(app(), alice, 'PATCH', url, { topic: 'x' }), 'topic');
      expectValidation(await call(app(), alice, 'PATCH', url, { name: 'has space' }), 'name');
      expectValidation(await call(app(), alice, 'PATCH', url, { name: 'abcdef0123456789abcdef01' }), 'name');
      expectValidation(await call(app(), alice, 'PATCH', url, { name: '' }), 'name');
      expectValidation(await call(app(), alice, 'PATCH', url, { description: 5 }), 'description');
      expectError(await call(app(), alice, 'PATCH', url, {}), 400, 'VALIDATION_FAILED');
      expectError(
        await call(app(), alice, 'PATCH', `/channels/${unique('missing')}`, { description: 'x' }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(await call(app(), undefined, 'PATCH', url, { description: 'x' }), 401, 'UNAUTHORIZED');
      expect(await getChannel(alice, channel.id)).toMatchObject({ name, description: null });
    });

    it('POST /channels/:id/members: bad bodies, unknown users (nothing added), unknown channel, no token', async () => {
      const [alice, bob] = await Promise.all([person(app()), person(app())]);
      const channel = await group(alice);
      const url = `/channels/${channel.id}/members`;
      expectValidation(await call(app(), alice, 'POST', url, {}), 'members');
      expectValidation(await call(app(), alice, 'POST', url, { members: [] }), 'members');
      expectValidation(await call(app(), alice, 'POST', url, { members: bob.id }), 'members');
      expectValidation(await call(app(), alice, 'POST', url, { members: [bob.id], role: 'owner' }), 'role');
      expectValidation(
        await call(app(), alice, 'POST', url, { members: ['0123456789abcdef01234567'] }),
        'members.0',
      );
      expectValidation(
        await call(app(), alice, 'POST', url, { members: [bob.id, 'ghost@example.com'] }),
        'members.1',
      );
      expectError(
        await call(app(), alice, 'POST', `/channels/${unique('missing')}/members`, { members: [bob.id] }),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(await call(app(), undefined, 'POST', url, { members: [bob.id] }), 401, 'UNAUTHORIZED');
      expect(await memberIds(alice, channel.id)).toEqual([alice.id]);
      expectError(await call(app(), bob, 'GET', `/channels/${channel.id}`), 404, 'CHANNEL_NOT_FOUND');
    });

    it('DELETE /channels/:id/members/:user: unknown users, non-members, unknown channel, no token', async () => {
      const [alice, bob, carol] = await Promise.all([person(app()), person(app()), person(app())]);
      const channel = await group(alice, [bob]);
      const base = `/channels/${channel.id}/members`;
      expectError(
        await call(app(), alice, 'DELETE', `${base}/0123456789abcdef01234567`),
        404,
        'USER_NOT_FOUND',
      );
      expectError(await call(app(), alice, 'DELETE', `${base}/ghost@example.com`), 404, 'USER_NOT_FOUND');
      expectError(await call(app(), alice, 'DELETE', `${base}/${carol.id}`), 404, 'USER_NOT_FOUND');
      expectError(
        await call(app(), alice, 'DELETE', `/channels/${unique('missing')}/members/${bob.id}`),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(await call(app(), undefined, 'DELETE', `${base}/${bob.id}`), 401, 'UNAUTHORIZED');
      expect(await memberIds(alice, channel.id)).toEqual([alice.id, bob.id].sort());
    });

    it('GET /channels/:id/members: bad paging, unknown channel, no token', async () => {
      const alice = await person(app());
      const channel = await group(alice);
      const url = `/channels/${channel.id}/members`;
      expectValidation(await call(app(), alice, 'GET', url, undefined, { limit: '0' }), 'limit');
      expectValidation(await call(app(), alice, 'GET', url, undefined, { limit: 'ten' }), 'limit');
      expectValidation(await call(app(), alice, 'GET', url, undefined, { cursor: 'not-a-cursor' }), 'cursor');
      expectValidation(await call(app(), alice, 'GET', url, undefined, { role: 'owner' }), 'role');
      expectError(
        await call(app(), alice, 'GET', `/channels/${unique('missing')}/members`),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(await call(app(), undefined, 'GET', url), 401, 'UNAUTHORIZED');
    });

    it('POST /channels/:id/join: unknown channel and no token', async () => {
      const alice = await person(app());
      const channel = await publicChannel();
      expectError(
        await call(app(), alice, 'POST', `/channels/${unique('missing')}/join`),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(
        await call(app(), alice, 'POST', '/channels/0123456789abcdef01234567/join'),
        404,
        'CHANNEL_NOT_FOUND',
      );
      expectError(await call(app(), undefined, 'POST', `/channels/${channel.id}/join`), 401, 'UNAUTHORIZED');
      expect(await memberIds(moderator, channel.id)).toEqual([moderator.id]);
    });
  });
});
