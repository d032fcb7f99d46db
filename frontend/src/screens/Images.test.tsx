import { describe, expect, it, beforeEach } from "vitest";
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { ImagesScreen, pullStep } from "./Images";
import { installFakeBackend, reply, type FakeBackend } from "../test/fakeBackend";
import { renderScreen } from "../test/render";

let fake: FakeBackend;
let images: { Id: string; RepoTags: string[] | null; Created: number; Size: number }[];

beforeEach(() => {
  fake = installFakeBackend();
  images = [
    { Id: "sha256:" + "a".repeat(64), RepoTags: ["nginx:1.27"], Created: 1700000000, Size: 190 * 1024 * 1024 },
    { Id: "sha256:" + "b".repeat(64), RepoTags: ["<none>:<none>"], Created: 1600000000, Size: 5 * 1024 * 1024 },
  ];
  fake.route("GET", "/images/json", () => images);
});

const line = (o: object) => JSON.stringify(o);

describe("ImagesScreen", () => {
  it("lists images by their first tag, or id, with size", async () => {
    renderScreen(<ImagesScreen />);
    await waitFor(() => expect(screen.getAllByTestId("image-row")).toHaveLength(2));
    const rows = screen.getAllByTestId("image-row");
    expect(rows.map((r) => r.dataset.ref)).toEqual(["nginx:1.27", "sha256:" + "b".repeat(64)]);
    expect(rows[0]).toHaveTextContent("190 MiB");
    expect(rows[0]).toHaveTextContent("aaaaaaaaaaaa");
    expect(rows[1]).toHaveTextContent("<none>");
  });

  it("a pull shows a progress bar per layer from the stream's lines", async () => {
    const user = userEvent.setup();
    renderScreen(<ImagesScreen />);
    await user.type(screen.getByLabelText("Image to pull"), "redis:7");
    await user.click(screen.getByRole("button", { name: "Pull" }));
    await waitFor(() => expect(fake.stream("/images/create")).toBeDefined());
    const s = fake.stream("/images/create")!;
    expect(s.method).toBe("POST");
    expect(s.kind).toBe("lines");
    expect(s.path).toBe("/images/create?fromImage=redis&tag=7");

    s.chunk(line({ status: "Pulling from library/redis", id: "7" }));
    s.chunk(line({ status: "Pulling fs layer", progressDetail: {}, id: "l1" }));
    s.chunk(line({ status: "Pulling fs layer", progressDetail: {}, id: "l2" }));
    s.chunk(line({ status: "Downloading", progressDetail: { current: 250, total: 1000 }, id: "l1" }));
    s.chunk(line({ status: "Downloading", progressDetail: { current: 100, total: 400 }, id: "l2" }));
    const box = screen.getByTestId("pull-progress");
    const l1 = within(box).getByRole("progressbar", { name: "layer l1" });
    const l2 = within(box).getByRole("progressbar", { name: "layer l2" });
    expect(l1).toHaveAttribute("value", "250");
    expect(l1).toHaveAttribute("max", "1000");
    expect(l2).toHaveAttribute("value", "100");
    expect(within(box).queryByRole("progressbar", { name: "layer 7" })).toBeNull();
    s.chunk(line({ status: "Download complete", progressDetail: {}, id: "l1" }));
    expect(l1).toHaveAttribute("value", "1000");
    s.chunk(line({ status: "Status: Downloaded newer image for redis:7" }));
    images = [...images, { Id: "sha256:" + "c".repeat(64), RepoTags: ["redis:7"], Created: 1800000000, Size: 1 }];
    s.end();
    await waitFor(() => expect(screen.getAllByTestId("image-row").map((r) => r.dataset.ref)).toContain("redis:7"));
    expect(box).toHaveTextContent("Done");
  });

  it("a pull's error is shown as an alert", async () => {
    const user = userEvent.setup();
    renderScreen(<ImagesScreen />);
    await user.type(screen.getByLabelText("Image to pull"), "nope/nothing");
    await user.click(screen.getByRole("button", { name: "Pull" }));
    await waitFor(() => expect(fake.stream("/images/create")).toBeDefined());
    const s = fake.stream("/images/create")!;
    s.chunk(line({ error: "pull access denied for nope/nothing", errorDetail: { message: "pull access denied for nope/nothing" } }));
    s.end();
    expect(await screen.findByRole("alert")).toHaveTextContent("pull access denied for nope/nothing");
  });

  it("a pull the engine refuses at once is shown too", async () => {
    const user = userEvent.setup();
    fake.app.StreamOpen.mockRejectedValueOnce(new Error("invalid reference format"));
    renderScreen(<ImagesScreen />);
    await user.type(screen.getByLabelText("Image to pull"), "Bad:Ref:x");
    await user.click(screen.getByRole("button", { name: "Pull" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("invalid reference format");
  });

  it("Run creates the container with ports, volumes and env, then starts it", async () => {
    const user = userEvent.setup();
    fake.route("POST", "/containers/create", { Id: "new1", Warnings: [] });
    fake.route("POST", "/containers/new1/start", undefined);
    renderScreen(<ImagesScreen />);
    await user.click(await screen.findByRole("button", { name: "Run nginx:1.27" }));
    const dialog = screen.getByRole("dialog", { name: "Run nginx:1.27" });
    await user.type(within(dialog).getByLabelText("Container name"), "web");
    await user.type(within(dialog).getByLabelText("Ports"), "8080:80, 8443:443");
    await user.type(within(dialog).getByLabelText("Volumes"), "/srv/site:/usr/share/nginx/html");
    await user.type(within(dialog).getByLabelText("Environment"), "MODE=prod{Enter}DEBUG=0");
    await user.click(within(dialog).getByRole("button", { name: "Run" }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    const create = fake.calls("POST", "/containers/create");
    expect(create).toHaveLength(1);
    expect(create[0].path).toBe("/containers/create?name=web");
    expect(create[0].body).toEqual({
      Image: "nginx:1.27",
      Env: ["MODE=prod", "DEBUG=0"],
      ExposedPorts: { "80/tcp": {}, "443/tcp": {} },
      HostConfig: {
        PortBindings: { "80/tcp": [{ HostIp: "", HostPort: "8080" }], "443/tcp": [{ HostIp: "", HostPort: "8443" }] },
        Binds: ["/srv/site:/usr/share/nginx/html"],
      },
    });
    expect(fake.calls("POST", "/containers/new1/start")).toHaveLength(1);
  });

  it("Run shows a form error without calling the engine, and the engine's error", async () => {
    const user = userEvent.setup();
    fake.route("POST", "/containers/create", reply(409, { message: 'Conflict. The container name "/web" is already in use' }));
    renderScreen(<ImagesScreen />);
    await user.click(await screen.findByRole("button", { name: "Run nginx:1.27" }));
    const dialog = screen.getByRole("dialog");
    await user.type(within(dialog).getByLabelText("Ports"), "80:web");
    await user.click(within(dialog).getByRole("button", { name: "Run" }));
    expect(within(dialog).getByRole("alert")).toHaveTextContent("web is not a port number");
    expect(fake.calls("POST")).toHaveLength(0);
    await user.clear(within(dialog).getByLabelText("Ports"));
    await user.type(within(dialog).getByLabelText("Container name"), "web");
    await user.click(within(dialog).getByRole("button", { name: "Run" }));
    expect(await within(dialog).findByText(/already in use/)).toHaveAttribute("role", "alert");
  });

  it("Delete asks, and shows the engine's conflict", async () => {
    const user = userEvent.setup();
    fake.route("DELETE", /^\/images\//, reply(409, { message: "conflict: unable to delete aaaa (cannot be forced) - image is being used by running container 123" }));
    renderScreen(<ImagesScreen />);
    await user.click(await screen.findByRole("button", { name: "Delete nginx:1.27" }));
    const dialog = screen.getByRole("dialog");
    expect(fake.calls("DELETE")).toHaveLength(0);
    await user.click(within(dialog).getByRole("button", { name: "Delete" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("image is being used by running container");
    expect(fake.calls("DELETE")[0].path).toBe(`/images/${encodeURIComponent(images[0].Id)}`);
  });

  it("Prune asks, then shows the space reclaimed", async () => {
    const user = userEvent.setup();
    fake.route("POST", "/images/prune", { ImagesDeleted: [{ Deleted: "x" }, { Untagged: "y" }], SpaceReclaimed: 3 * 1024 * 1024 });
    renderScreen(<ImagesScreen />);
    await user.click(await screen.findByRole("button", { name: "Prune" }));
    expect(fake.calls("POST")).toHaveLength(0);
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Prune" }));
    expect(await screen.findByTestId("prune-result")).toHaveTextContent("Reclaimed 3.00 MiB (2 images deleted)");
    expect(fake.calls("POST")[0].path).toBe("/images/prune");
  });
});

describe("pullStep", () => {
  it("keeps whole-image lines out of the layers", () => {
    let p: Parameters<typeof pullStep>[0] = { ref: "x", layers: [], status: "", done: false };
    p = pullStep(p, { status: "Digest: sha256:abc" });
    expect(p.layers).toHaveLength(0);
    expect(p.status).toBe("Digest: sha256:abc");
    p = pullStep(p, { id: "l1", status: "Already exists", progressDetail: {} });
    expect(p.layers).toEqual([{ id: "l1", status: "Already exists", current: undefined, total: undefined }]);
  });
});
